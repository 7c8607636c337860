// z = TopK_k(ReLU((x - b_dec) W_enc^T + b_enc)), best first, value-0 padded; CPU reference: native/sae/topk_encode.cc topk_encode.
// A tiled GEMM (FP32 SIMT, or TF32 / BF16 tensor cores with FP32 sums) takes each row's best candidates on every
// tile, so the B x m pre-activations never reach global memory; one warp per row merges the tiles' lists as
// finalize_keys (native/sae/topk_select.cc) does, with the candidate keys of native/common/candidate_keys.h.
#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <mma.h>

#include <algorithm>
#include <type_traits>

#include "../native/common/candidate_keys.h"
#include "block_reduce.cuh"
#include "sae_ops.cuh"

namespace cmsae::cuda {
namespace {

constexpr int BM = kEncodeTileRows;  // rows of an encode tile
constexpr int BN = 128;  // latents of an encode tile
constexpr int BK = 32;   // depth of one shared-memory stage
constexpr int kStrideF32 = BK + 1;   // SIMT: odd stride, conflict-free column reads
constexpr int kStrideTf32 = BK + 4;  // WMMA: ldm must be a multiple of 4 floats
constexpr int kStrideBf16 = BK + 8;  // WMMA bf16: ldm must be a multiple of 8 elements
constexpr int kStrideC = BN + 4;
constexpr int kSmemAB = (BM + BN) * kStrideTf32;
constexpr int kSmemC = BM * kStrideC;
constexpr int kSmemFloats = kSmemAB > kSmemC ? kSmemAB : kSmemC;

enum class Gemm { Fp32, Tf32, Bf16 };

// cand[(r * tiles + tile) * kk + t]: the kk best positive pre-activations of row r among the tile's latents,
// pre[r, j] = (x_r - b_dec) . W_enc[j] + b_enc[j], for a BM x BN tile; 0 keys mark "no more positives".
// Fp32: SIMT FMA; Tf32: tensor cores on TF32-rounded inputs; Bf16: tensor cores on BF16 inputs; FP32 sums.
// One function on purpose: the GEMM's accumulators and the selection share the tile's registers and shared memory.
template <Gemm kMode>
__global__ void __launch_bounds__(kThreads) encode_tiles(const float* __restrict__ X, const float* __restrict__ b_dec,
                                                         const float* __restrict__ W, const float* __restrict__ b_enc,
                                                         int R, int d, int m, int kk, unsigned long long* __restrict__ cand) {
  __shared__ __align__(32) float smem[kSmemFloats];
  constexpr bool kTc = kMode != Gemm::Fp32;  // tensor cores
  constexpr int S = kMode == Gemm::Tf32 ? kStrideTf32 : kMode == Gemm::Bf16 ? kStrideBf16 : kStrideF32;
  float* As = smem;
  float* Bs = smem + BM * S;
  __nv_bfloat16* Ah = reinterpret_cast<__nv_bfloat16*>(smem);
  __nv_bfloat16* Bh = Ah + BM * S;
  const int r0 = blockIdx.y * BM, j0 = blockIdx.x * BN, tid = threadIdx.x;
  const int warp = tid >> 5, lane = tid & 31;
  const int tiles = gridDim.x;

  float acc[4][8];
  using CFrag = std::conditional_t<kMode == Gemm::Bf16, nvcuda::wmma::fragment<nvcuda::wmma::accumulator, 16, 16, 16, float>,
                                   nvcuda::wmma::fragment<nvcuda::wmma::accumulator, 16, 16, 8, float>>;
  CFrag cfrag[2][2];
  if constexpr (kTc) {
    for (int a = 0; a < 2; ++a)
      for (int b = 0; b < 2; ++b) nvcuda::wmma::fill_fragment(cfrag[a][b], 0.f);
  } else {
    for (int a = 0; a < 4; ++a)
      for (int b = 0; b < 8; ++b) acc[a][b] = 0.f;
  }
  const int tr = tid >> 4, tc = tid & 15;  // SIMT: rows tr + 16 i, latents tc + 16 j
  const int wr = warp >> 2, wc = warp & 3;  // WMMA: warp tile 32 x 32 at (32 wr, 32 wc)

  for (int k0 = 0; k0 < d; k0 += BK) {
    for (int e = tid; e < BM * BK; e += kThreads) {
      const int rr = e / BK, cc = e % BK, gr = r0 + rr, gc = k0 + cc;
      const float a = (gr < R && gc < d) ? X[static_cast<long>(gr) * d + gc] - b_dec[gc] : 0.f;
      if constexpr (kMode == Gemm::Bf16) Ah[rr * S + cc] = __float2bfloat16(a);
      else As[rr * S + cc] = a;
    }
    for (int e = tid; e < BN * BK; e += kThreads) {
      const int rr = e / BK, cc = e % BK, gj = j0 + rr, gc = k0 + cc;
      const float b = (gj < m && gc < d) ? W[static_cast<long>(gj) * d + gc] : 0.f;
      if constexpr (kMode == Gemm::Bf16) Bh[rr * S + cc] = __float2bfloat16(b);
      else Bs[rr * S + cc] = b;
    }
    __syncthreads();
    if constexpr (kMode == Gemm::Bf16) {
      using namespace nvcuda;
      for (int kq = 0; kq < BK; kq += 16) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> af[2];
        wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> bf[2];
        for (int a = 0; a < 2; ++a) wmma::load_matrix_sync(af[a], Ah + (wr * 32 + a * 16) * S + kq, S);
        for (int b = 0; b < 2; ++b) wmma::load_matrix_sync(bf[b], Bh + (wc * 32 + b * 16) * S + kq, S);
        for (int a = 0; a < 2; ++a)
          for (int b = 0; b < 2; ++b) wmma::mma_sync(cfrag[a][b], af[a], bf[b], cfrag[a][b]);
      }
    } else if constexpr (kMode == Gemm::Tf32) {
      using namespace nvcuda;
      for (int kq = 0; kq < BK; kq += 8) {
        wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major> af[2];
        wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::col_major> bf[2];
        for (int a = 0; a < 2; ++a) {
          wmma::load_matrix_sync(af[a], As + (wr * 32 + a * 16) * S + kq, S);
          for (int t = 0; t < af[a].num_elements; ++t) af[a].x[t] = wmma::__float_to_tf32(af[a].x[t]);
        }
        for (int b = 0; b < 2; ++b) {
          wmma::load_matrix_sync(bf[b], Bs + (wc * 32 + b * 16) * S + kq, S);
          for (int t = 0; t < bf[b].num_elements; ++t) bf[b].x[t] = wmma::__float_to_tf32(bf[b].x[t]);
        }
        for (int a = 0; a < 2; ++a)
          for (int b = 0; b < 2; ++b) wmma::mma_sync(cfrag[a][b], af[a], bf[b], cfrag[a][b]);
      }
    } else {
#pragma unroll 4
      for (int kq = 0; kq < BK; ++kq) {
        float av[4], bv[8];
        for (int a = 0; a < 4; ++a) av[a] = As[(tr + 16 * a) * S + kq];
        for (int b = 0; b < 8; ++b) bv[b] = Bs[(tc + 16 * b) * S + kq];
        for (int a = 0; a < 4; ++a)
          for (int b = 0; b < 8; ++b) acc[a][b] = fmaf(av[a], bv[b], acc[a][b]);
      }
    }
    __syncthreads();
  }
  // The tile goes to shared memory (over the A/B stages), then each warp selects its rows' candidates.
  float* Cs = smem;
  if constexpr (kTc) {
    for (int a = 0; a < 2; ++a)
      for (int b = 0; b < 2; ++b)
        nvcuda::wmma::store_matrix_sync(Cs + (wr * 32 + a * 16) * kStrideC + wc * 32 + b * 16, cfrag[a][b], kStrideC,
                                        nvcuda::wmma::mem_row_major);
  } else {
    for (int a = 0; a < 4; ++a)
      for (int b = 0; b < 8; ++b) Cs[(tr + 16 * a) * kStrideC + tc + 16 * b] = acc[a][b];
  }
  __syncthreads();
  for (int rr = warp; rr < BM; rr += kThreads / 32) {
    const int gr = r0 + rr;
    if (gr >= R) break;
    unsigned long long keys[BN / 32];
    for (int q = 0; q < BN / 32; ++q) {
      const int c = lane + 32 * q, j = j0 + c;
      const float v = j < m ? Cs[rr * kStrideC + c] + b_enc[j] : 0.f;
      keys[q] = (j < m && v > 0.f) ? candidate_key(v, j) : 0ull;
    }
    unsigned long long* out = cand + (static_cast<long>(gr) * tiles + blockIdx.x) * kk;
    for (int t = 0; t < kk; ++t) {
      unsigned long long best = keys[0];
      for (int q = 1; q < BN / 32; ++q) best = keys[q] > best ? keys[q] : best;
      best = warp_max(best);
      if (lane == 0) out[t] = best;
      if (best == 0ull) {
        for (int u = t + 1 + lane; u < kk; u += 32) out[u] = 0ull;
        break;
      }
      for (int q = 0; q < BN / 32; ++q)
        if (keys[q] == best) keys[q] = 0ull;
    }
  }
}

constexpr int kMaxOwnedTiles = 16;

// idx/val[r, 0..k): the k best candidates of row r (one warp per row), padded as the CPU engine does.
// Each tile's kk candidates are sorted best first (zeros last), so the row's best is the best tile head: each
// lane keeps cursors into the tiles it owns (tile t belongs to lane t % 32) when there are at most
// 32 * kMaxOwnedTiles tiles; beyond that it scans its share of all candidates for every slot.
__global__ void merge_candidates(unsigned long long* __restrict__ cand, int R, int tiles, int kk, int k, int m,
                                 int32_t* __restrict__ idx, float* __restrict__ val) {
  const int warps = blockDim.x >> 5;
  const int r = blockIdx.x * warps + (threadIdx.x >> 5), lane = threadIdx.x & 31;
  if (r >= R) return;  // r is the same for the whole warp
  const int n = tiles * kk;
  unsigned long long* c = cand + static_cast<long>(r) * n;
  int32_t* oi = idx + static_cast<long>(r) * k;
  float* ov = val + static_cast<long>(r) * k;
  int keep = 0;
  if (tiles <= 32 * kMaxOwnedTiles) {
    int cur[kMaxOwnedTiles];
    for (int q = 0; q < kMaxOwnedTiles; ++q) cur[q] = 0;
    for (; keep < k; ++keep) {
      unsigned long long best = 0ull;
      int owner_slot = -1;
      for (int q = 0; q < kMaxOwnedTiles; ++q) {
        const int t = lane + 32 * q;
        if (t >= tiles || cur[q] >= kk) continue;
        const unsigned long long h = c[t * kk + cur[q]];
        if (h > best) {
          best = h;
          owner_slot = q;
        }
      }
      const unsigned long long top = warp_max(best);
      if (top == 0ull) break;
      if (best == top) ++cur[owner_slot];  // keys are unique: exactly one lane owns it
      if (lane == 0) {
        const Candidate c = key_candidate(top);
        oi[keep] = c.index;
        ov[keep] = c.value;
      }
    }
  } else {
    for (; keep < k; ++keep) {
      unsigned long long best = 0ull;
      int where = -1;
      for (int i = lane; i < n; i += 32)
        if (c[i] > best) {
          best = c[i];
          where = i;
        }
      const unsigned long long top = warp_max(best);
      if (top == 0ull) break;
      if (best == top) c[where] = 0ull;
      if (lane == 0) {
        const Candidate c = key_candidate(top);
        oi[keep] = c.index;
        ov[keep] = c.value;
      }
      __syncwarp();
    }
  }
  __syncwarp();
  if (lane == 0) pad_row(keep, k, m, oi, ov);  // slots [keep, k): value 0, the smallest unused latents
}

}  // namespace

void launch_topk_encode(const float* X, long rows, int k, const float* W_enc, const float* b_enc, const float* b_dec, int d,
                        int m, DevicePrecision precision, DeviceBuffer<unsigned long long>& cand, int32_t* idx, float* val,
                        cudaStream_t stream) {
  const int tiles = (m + BN - 1) / BN;
  const int kk = std::min(k, BN);
  const long n = static_cast<long>(tiles) * kk;
  long chunk = std::max<long>(BM, ((1L << 30) / (8 * n)) / BM * BM);
  chunk = std::min<long>(chunk, 65535L * BM);
  chunk = std::min<long>(chunk, rows);
  cand.ensure(static_cast<size_t>(chunk) * n);
  for (long r0 = 0; r0 < rows; r0 += chunk) {
    const long nr = std::min(chunk, rows - r0);
    const float* Xc = X + r0 * d;
    const dim3 grid(tiles, static_cast<unsigned>((nr + BM - 1) / BM));
    if (precision == DevicePrecision::Tf32)
      encode_tiles<Gemm::Tf32><<<grid, kThreads, 0, stream>>>(Xc, b_dec, W_enc, b_enc, static_cast<int>(nr), d, m, kk, cand.p);
    else if (precision == DevicePrecision::Bf16)
      encode_tiles<Gemm::Bf16><<<grid, kThreads, 0, stream>>>(Xc, b_dec, W_enc, b_enc, static_cast<int>(nr), d, m, kk, cand.p);
    else
      encode_tiles<Gemm::Fp32><<<grid, kThreads, 0, stream>>>(Xc, b_dec, W_enc, b_enc, static_cast<int>(nr), d, m, kk, cand.p);
    CMSAE_CUDA(cudaGetLastError());
    const int warps = kThreads / 32;
    merge_candidates<<<(nr + warps - 1) / warps, kThreads, 0, stream>>>(cand.p, static_cast<int>(nr), tiles, kk, k, m, idx + r0 * k,
                                                                       val + r0 * k);
    CMSAE_CUDA(cudaGetLastError());
  }
}

}  // namespace cmsae::cuda
