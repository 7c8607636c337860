// CUDA Top-K SAE: fused encode (tiled GEMM, FP32 SIMT or TF32 tensor cores, with the per-row top-k taken on
// each tile so the B x m pre-activations never reach global memory), sparse decode with dL/dx_hat and dL/dval,
// deterministic sparse backward (entries sorted by latent with CUB), decoder-gradient projection, AdamW and
// decoder renormalization. Same layouts and formulas as native/sae (model.cc, backward.cc, decode.cc).
#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <mma.h>

#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_scan.cuh>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "../native/common/errors.h"
#include "../native/sae/device_sae.h"
#include "../native/sae/loss_scale.h"
#include "cuda_check.h"
#include "device_info.h"
#include "sae_device.h"

namespace cmsae::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int BM = 64;   // rows of an encode tile
constexpr int BN = 128;  // latents of an encode tile
constexpr int BK = 32;   // depth of one shared-memory stage
constexpr int kStrideF32 = BK + 1;   // SIMT: odd stride, conflict-free column reads
constexpr int kStrideTf32 = BK + 4;  // WMMA: ldm must be a multiple of 4 floats
constexpr int kStrideBf16 = BK + 8;  // WMMA bf16: ldm must be a multiple of 8 elements
constexpr int kStrideC = BN + 4;
constexpr int kSmemAB = (BM + BN) * kStrideTf32;
constexpr int kSmemC = BM * kStrideC;
constexpr int kSmemFloats = kSmemAB > kSmemC ? kSmemAB : kSmemC;

// Candidate keys: unsigned order = (value desc, index asc), as candidate_key in native/sae/topk_select.h.
__device__ __forceinline__ unsigned long long make_key(float v, int j) {
  unsigned u = __float_as_uint(v + 0.f);
  u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
  return (static_cast<unsigned long long>(u) << 32) | (0xFFFFFFFFu - static_cast<unsigned>(j));
}
__device__ __forceinline__ float key_value(unsigned long long key) {
  unsigned u = static_cast<unsigned>(key >> 32);
  u = (u & 0x80000000u) ? (u & 0x7FFFFFFFu) : ~u;
  return __uint_as_float(u);
}
__device__ __forceinline__ int key_index(unsigned long long key) {
  return static_cast<int>(0xFFFFFFFFu - static_cast<unsigned>(key));
}
__device__ __forceinline__ unsigned long long warp_max(unsigned long long x) {
  for (int off = 16; off > 0; off >>= 1) {
    const unsigned long long y = __shfl_xor_sync(0xFFFFFFFFu, x, off);
    x = y > x ? y : x;
  }
  return x;
}
__device__ __forceinline__ double warp_sum(double x) {
  for (int off = 16; off > 0; off >>= 1) x += __shfl_xor_sync(0xFFFFFFFFu, x, off);
  return x;
}
__device__ __forceinline__ float warp_sumf(float x) {
  for (int off = 16; off > 0; off >>= 1) x += __shfl_xor_sync(0xFFFFFFFFu, x, off);
  return x;
}
// Sum over the block (blockDim.x a multiple of 32, <= 1024); every thread gets the result.
__device__ double block_sum(double x) {
  __shared__ double part[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  x = warp_sum(x);
  __syncthreads();
  if (lane == 0) part[warp] = x;
  __syncthreads();
  double s = 0;
  for (int w = 0; w < static_cast<int>(blockDim.x >> 5); ++w) s += part[w];
  return s;
}

enum class Gemm { Fp32, Tf32, Bf16 };

// cand[(r * tiles + tile) * kk + t]: the kk best positive pre-activations of row r among the tile's latents,
// pre[r, j] = (x_r - b_dec) . W_enc[j] + b_enc[j], for a BM x BN tile; 0 keys mark "no more positives".
// Fp32: SIMT FMA; Tf32: tensor cores on TF32-rounded inputs; Bf16: tensor cores on BF16 inputs; FP32 sums.
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
      keys[q] = (j < m && v > 0.f) ? make_key(v, j) : 0ull;
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
        oi[keep] = key_index(top);
        ov[keep] = key_value(top);
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
        oi[keep] = key_index(top);
        ov[keep] = key_value(top);
      }
      __syncwarp();
    }
  }
  __syncwarp();
  if (lane == 0) {
    // Slots [keep, k): value 0 and the smallest latent indices not already used.
    int s = keep;
    for (int j = 0; s < k && j < m; ++j) {
      bool used = false;
      for (int t = 0; t < keep; ++t) used |= (oi[t] == j);
      if (used) continue;
      oi[s] = j;
      ov[s] = 0.f;
      ++s;
    }
  }
}

// out[r] = b_dec + sum_s val[r, s] W_dec[idx[r, s]] (one block per row).
__global__ void decode_rows(const float* __restrict__ W, const float* __restrict__ b_dec, int d, const int32_t* __restrict__ idx,
                            const float* __restrict__ val, int k, float* __restrict__ out) {
  const long r = blockIdx.x;
  for (int c = threadIdx.x; c < d; c += blockDim.x) {
    float o = b_dec ? b_dec[c] : 0.f;
    for (int s = 0; s < k; ++s) {
      const float v = val[r * k + s];
      if (v != 0.f) o = fmaf(v, W[static_cast<long>(idx[r * k + s]) * d + c], o);
    }
    out[r * d + c] = o;
  }
}

constexpr int kColChunk = 256;  // rows (or latents) per partial column sum

// part[chunk, c] = sum over rows [r0 + chunk * kColChunk, ...) of (X[r, c] - shift[c]) (squared when sq); grid
// (ceil(d / 256), chunks). Fixed chunks and a fixed final order: deterministic.
__global__ void column_partials(const float* __restrict__ X, long r0, long rows, int d, const double* __restrict__ shift, bool sq,
                                double* __restrict__ part) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= d) return;
  const long a = r0 + static_cast<long>(blockIdx.y) * kColChunk, b = min(r0 + rows, a + kColChunk);
  const double sh = shift ? shift[c] : 0.0;
  double s = 0;
  for (long r = a; r < b; ++r) {
    const double e = X[r * d + c] - sh;
    s += sq ? e * e : e;
  }
  part[static_cast<long>(blockIdx.y) * d + c] = s;
}

// out[c] = scale * sum_chunk part[chunk, c] (+ out[c] when accumulate).
__global__ void column_finish(const double* __restrict__ part, int chunks, int d, double scale, bool accumulate, double* __restrict__ out) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= d) return;
  double s = 0;
  for (int q = 0; q < chunks; ++q) s += part[static_cast<long>(q) * d + c];
  out[c] = (accumulate ? out[c] : 0.0) + scale * s;
}

// part[chunk, c] = sum over latents j in the chunk of g_benc[j] W_enc[j, c].
__global__ void encoder_bias_partials(const float* __restrict__ g_benc, const float* __restrict__ W_enc, int m, int d,
                                      double* __restrict__ part) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= d) return;
  const int a = blockIdx.y * kColChunk, b = min(m, a + kColChunk);
  double s = 0;
  for (int j = a; j < b; ++j) s += static_cast<double>(g_benc[j]) * W_enc[static_cast<long>(j) * d + c];
  part[static_cast<long>(blockIdx.y) * d + c] = s;
}

__global__ void to_float(const double* __restrict__ a, int n, float* __restrict__ out) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = static_cast<float>(a[i]);
}

// Forward loss of row r: x_hat, e = x_hat - x, G = gscale[seg] e, sse_row[r] = sum e^2, and
// dval[r, s] = G . W_dec[idx[r, s]] for active slots (0 otherwise).
__global__ void forward_loss(const float* __restrict__ W, const float* __restrict__ b_dec, const float* __restrict__ X, int d,
                             const int32_t* __restrict__ idx, const float* __restrict__ val, int k, long seg_rows,
                             double gscale0, double gscale1, float* __restrict__ G, double* __restrict__ sse_row,
                             float* __restrict__ dval) {
  const long r = blockIdx.x;
  const float gscale = static_cast<float>(r < seg_rows ? gscale0 : gscale1);
  double sse = 0;
  for (int c = threadIdx.x; c < d; c += blockDim.x) {
    float o = b_dec[c];
    for (int s = 0; s < k; ++s) {
      const float v = val[r * k + s];
      if (v != 0.f) o = fmaf(v, W[static_cast<long>(idx[r * k + s]) * d + c], o);
    }
    const float e = o - X[r * d + c];
    sse += static_cast<double>(e) * e;
    G[r * d + c] = gscale * e;
  }
  const double total = block_sum(sse);  // its barriers also make this block's G row visible to every thread
  if (threadIdx.x == 0) sse_row[r] = total;
  __syncthreads();
  const float* g_row = G + r * d;
  const int warps = blockDim.x >> 5, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  for (int s = warp; s < k; s += warps) {
    const float v = val[r * k + s];
    float dot = 0.f;
    if (v > 0.f) {
      const float* w = W + static_cast<long>(idx[r * k + s]) * d;
      for (int c = lane; c < d; c += 32) dot = fmaf(g_row[c], w[c], dot);
      dot = warp_sumf(dot);
    }
    if (lane == 0) dval[r * k + s] = v > 0.f ? dot : 0.f;
  }
}

// out = {sse of rows [0, rows), sse of rows [rows, 2 rows), active entries, latents whose since would be >= window
// once this batch of R rows is committed (0 when window <= 0)}; one block, fixed strides: deterministic.
__global__ void forward_scalars(const double* __restrict__ sse_row, long rows, int nseg, const int* __restrict__ count, int m,
                                const long long* __restrict__ since, long long R, long long window, double* __restrict__ out) {
  double s0 = 0, s1 = 0, active = 0, dead = 0;
  for (long r = threadIdx.x; r < rows; r += blockDim.x) {
    s0 += sse_row[r];
    if (nseg > 1) s1 += sse_row[rows + r];
  }
  for (int j = threadIdx.x; j < m; j += blockDim.x) {
    active += count[j];
    if (window > 0 && (count[j] ? 0 : since[j] + R) >= window) dead += 1;
  }
  s0 = block_sum(s0);
  s1 = block_sum(s1);
  active = block_sum(active);
  dead = block_sum(dead);
  if (threadIdx.x == 0) {
    out[0] = s0;
    out[1] = s1;
    out[2] = active;
    out[3] = dead;
  }
}

// count[idx] += 1 for every active entry; keys/pos for the sort (inactive entries get key m).
__global__ void entry_keys(const int32_t* __restrict__ idx, const float* __restrict__ val, long n, int m,
                           int* __restrict__ count, int* __restrict__ keys, int* __restrict__ pos) {
  const long p = blockIdx.x * static_cast<long>(blockDim.x) + threadIdx.x;
  if (p >= n) return;
  const bool on = val[p] > 0.f;
  keys[p] = on ? idx[p] : m;
  pos[p] = static_cast<int>(p);
  if (on) atomicAdd(count + idx[p], 1);
}

// fires += count; since = count ? 0 : since + R.
__global__ void latent_stats(const int* __restrict__ count, int m, long long R, double* __restrict__ fires,
                             long long* __restrict__ since) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= m) return;
  fires[j] += count[j];
  since[j] = count[j] ? 0 : since[j] + R;
}

// Latent j's gradient rows from its sorted entries e in [off[j], off[j+1]) (p = pos[e], r = p / k):
// g_dec[j] = sum val_p G_r; g_enc[j] = sum dval_p x_r - (sum dval_p) b_dec; g_benc[j] = sum dval_p.
__global__ void latent_grads(const int* __restrict__ off, const int* __restrict__ pos, const float* __restrict__ val,
                             const float* __restrict__ dval, const float* __restrict__ G, const float* __restrict__ X,
                             const float* __restrict__ b_dec, int d, int k, float* __restrict__ g_dec,
                             float* __restrict__ g_enc, float* __restrict__ g_benc) {
  const int j = blockIdx.x;
  const int e0 = off[j], e1 = off[j + 1];
  float dsum = 0.f;
  for (int e = e0; e < e1; ++e) dsum += dval[pos[e]];
  for (int c = threadIdx.x; c < d; c += blockDim.x) {
    float gd = 0.f, ge = 0.f;
    for (int e = e0; e < e1; ++e) {
      const int p = pos[e];
      const long r = p / k;
      gd = fmaf(val[p], G[r * d + c], gd);
      ge = fmaf(dval[p], X[r * d + c], ge);
    }
    ge = fmaf(-dsum, b_dec[c], ge);
    g_dec[static_cast<long>(j) * d + c] = gd;
    g_enc[static_cast<long>(j) * d + c] = ge;
  }
  if (threadIdx.x == 0) g_benc[j] = dsum;
}

// g_dec[j] -= (g_dec[j] . W_dec[j]) W_dec[j] (one block per latent).
__global__ void project_rows(const float* __restrict__ W, float* __restrict__ g, int d) {
  const long j = blockIdx.x;
  double dot = 0;
  for (int c = threadIdx.x; c < d; c += blockDim.x) dot += static_cast<double>(g[j * d + c]) * W[j * d + c];
  const float f = static_cast<float>(block_sum(dot));
  for (int c = threadIdx.x; c < d; c += blockDim.x) g[j * d + c] = fmaf(-f, W[j * d + c], g[j * d + c]);
}

// part[block] = sum of squares of a[0..n) over the block's grid-stride share (fixed grid: deterministic).
__global__ void sum_squares(const float* __restrict__ a, long n, double* __restrict__ part) {
  double s = 0;
  for (long i = blockIdx.x * static_cast<long>(blockDim.x) + threadIdx.x; i < n; i += static_cast<long>(gridDim.x) * blockDim.x)
    s += static_cast<double>(a[i]) * a[i];
  s = block_sum(s);
  if (threadIdx.x == 0) part[blockIdx.x] = s;
}

// AdamW (torch formula, as the CPU kernel): p *= decay; m += (1-b1)(g s - m); v = b2 v + (1-b2)(g s)^2;
// p -= step_size m / (sqrt(v) inv_sqrt_bc2 + eps).
__global__ void adamw(float* __restrict__ p, float* __restrict__ m1, float* __restrict__ m2, const float* __restrict__ g, long n,
                      DeviceAdamArgs a) {
  for (long i = blockIdx.x * static_cast<long>(blockDim.x) + threadIdx.x; i < n; i += static_cast<long>(gridDim.x) * blockDim.x) {
    const float gi = g[i] * a.grad_scale;
    float pi = p[i] * a.decay_factor;
    const float mi = m1[i] + (1.f - a.beta1) * (gi - m1[i]);
    const float vi = a.beta2 * m2[i] + (1.f - a.beta2) * gi * gi;
    pi -= a.step_size * mi / (sqrtf(vi) * a.inv_sqrt_bc2 + a.eps);
    p[i] = pi;
    m1[i] = mi;
    m2[i] = vi;
  }
}

// W_dec[j] /= ||W_dec[j]|| + eps (one block per row).
__global__ void renorm_rows(float* __restrict__ W, int d, float eps) {
  const long j = blockIdx.x;
  double s = 0;
  for (int c = threadIdx.x; c < d; c += blockDim.x) s += static_cast<double>(W[j * d + c]) * W[j * d + c];
  const float inv = 1.0f / (static_cast<float>(sqrt(block_sum(s))) + eps);
  for (int c = threadIdx.x; c < d; c += blockDim.x) W[j * d + c] *= inv;
}

// out[r] = src[idx[r]] (one block per gathered row).
__global__ void gather_rows(const float* __restrict__ src, const int32_t* __restrict__ idx, int d, float* __restrict__ out) {
  const long r = blockIdx.x;
  const float* row = src + static_cast<long>(idx[r]) * d;
  for (int c = threadIdx.x; c < d; c += blockDim.x) out[r * d + c] = row[c];
}

__global__ void add_into(float* __restrict__ a, const float* __restrict__ b, long n) {
  const long i = blockIdx.x * static_cast<long>(blockDim.x) + threadIdx.x;
  if (i < n) a[i] += b[i];
}

long blocks_for(long n, int threads = kThreads) { return (n + threads - 1) / threads; }

class CudaSae final : public DeviceSae {
 public:
  CudaSae(int d, int m, int k, DevicePrecision p) : d_(d), m_(m), k_(k), precision_(p) {
    CMSAE_CUDA(cudaStreamCreate(&stream_));
    const size_t md = static_cast<size_t>(m) * d;
    W_enc_.alloc(md);
    W_dec_.alloc(md);
    b_enc_.alloc(m);
    b_dec_.alloc(d);
    const size_t sizes[4] = {md, static_cast<size_t>(m), md, static_cast<size_t>(d)};
    for (int q = 0; q < 4; ++q)
      for (int r = 0; r < 2; ++r) {
        mom_[q][r].alloc(sizes[q]);
        mom_[q][r].zero(stream_);
      }
    g_enc_.alloc(md);
    g_dec_.alloc(md);
    g_benc_.alloc(m);
    g_bdec_.alloc(d);
    fires_.alloc(m);
    since_.alloc(m);
    count_.alloc(static_cast<size_t>(m) + 1);
    off_.alloc(static_cast<size_t>(m) + 1);
    fires_.zero(stream_);
    since_.zero(stream_);
    col_tv_.alloc(2 * static_cast<size_t>(d));
    col_mean_.alloc(d);
    scalars_.alloc(4);
    part_.alloc(4 * kSumBlocks);
    sync();
  }
  ~CudaSae() override {
    if (stream_) cudaStreamDestroy(stream_);
  }

  void upload_params(const float* We, const float* be, const float* Wd, const float* bd) override {
    W_enc_.upload(We, stream_);
    b_enc_.upload(be, stream_);
    W_dec_.upload(Wd, stream_);
    b_dec_.upload(bd, stream_);
    sync();
  }
  void download_params(float* We, float* be, float* Wd, float* bd) override {
    W_enc_.download(We, stream_);
    b_enc_.download(be, stream_);
    W_dec_.download(Wd, stream_);
    b_dec_.download(bd, stream_);
    sync();
  }
  void upload_moments(const float* const mo[4][2]) override {
    for (int q = 0; q < 4; ++q)
      for (int r = 0; r < 2; ++r) mom_[q][r].upload(mo[q][r], stream_);
    sync();
  }
  void download_moments(float* const mo[4][2]) override {
    for (int q = 0; q < 4; ++q)
      for (int r = 0; r < 2; ++r) mom_[q][r].download(mo[q][r], stream_);
    sync();
  }
  void upload_latent_stats(const double* fires, const long long* since) override {
    fires_.upload(fires, stream_);
    since_.upload(since, stream_);
    sync();
  }
  void download_latent_stats(double* fires, long long* since) override {
    fires_.download(fires, stream_);
    since_.download(since, stream_);
    sync();
  }

  void encode(const float* x, long rows, int k, int32_t* idx, float* val) override {
    const long chunk = std::max<long>(BM, std::min<long>(rows, 8192));
    for (long r0 = 0; r0 < rows; r0 += chunk) {
      const long n = std::min(chunk, rows - r0);
      // Own buffers: the training forward's X, codes and dL/dval stay intact between forward and backward.
      inf_X_.ensure(static_cast<size_t>(n) * d_);
      inf_X_.upload(x + r0 * d_, stream_, static_cast<size_t>(n) * d_);
      inf_idx_.ensure(static_cast<size_t>(n) * k);
      inf_val_.ensure(static_cast<size_t>(n) * k);
      run_encode(inf_X_.p, n, k, inf_idx_.p, inf_val_.p);
      inf_idx_.download(idx + r0 * k, stream_, static_cast<size_t>(n) * k);
      inf_val_.download(val + r0 * k, stream_, static_cast<size_t>(n) * k);
      sync();
    }
  }

  void decode(const int32_t* idx, const float* val, long rows, int k, float* out) override {
    const long chunk = std::max<long>(1, std::min<long>(rows, 16384));
    for (long r0 = 0; r0 < rows; r0 += chunk) {
      const long n = std::min(chunk, rows - r0);
      dec_idx_.ensure(static_cast<size_t>(n) * k);
      dec_val_.ensure(static_cast<size_t>(n) * k);
      dec_out_.ensure(static_cast<size_t>(n) * d_);
      dec_idx_.upload(idx + r0 * k, stream_, static_cast<size_t>(n) * k);
      dec_val_.upload(val + r0 * k, stream_, static_cast<size_t>(n) * k);
      decode_rows<<<n, kThreads, 0, stream_>>>(W_dec_.p, b_dec_.p, d_, dec_idx_.p, dec_val_.p, k, dec_out_.p);
      CMSAE_CUDA(cudaGetLastError());
      dec_out_.download(out + r0 * d_, stream_, static_cast<size_t>(n) * d_);
      sync();
    }
  }

  DeviceForward forward(const float* x, const float* y, long rows, double w, bool fvu, long long dead_window) override {
    const int nseg = y ? 2 : 1;
    const long R = rows * nseg;
    X_.ensure(static_cast<size_t>(R) * d_);
    X_.upload(x, stream_, static_cast<size_t>(rows) * d_);
    if (y) CMSAE_CUDA(cudaMemcpyAsync(X_.p + static_cast<size_t>(rows) * d_, y, sizeof(float) * rows * d_, cudaMemcpyHostToDevice, stream_));
    return forward_staged(rows, nseg, w, fvu, dead_window);
  }

  DeviceForward forward_rows(const DeviceRows& x, const DeviceRows* y, const int32_t* idx, long rows, double w, bool fvu,
                             long long dead_window) override {
    stage_rows(x, y, idx, rows);
    return forward_staged(rows, y ? 2 : 1, w, fvu, dead_window);
  }

  void download_staged(float* host, long values) override {
    X_.download(host, stream_, static_cast<size_t>(values));
    sync();
  }

  void stage_rows(const DeviceRows& x, const DeviceRows* y, const int32_t* idx, long rows) override {
    const int nseg = y ? 2 : 1;
    idx_dev_.ensure(rows);
    idx_dev_.upload(idx, stream_, rows);
    X_.ensure(static_cast<size_t>(rows) * nseg * d_);
    gather_rows<<<rows, kThreads, 0, stream_>>>(x.device_data(), idx_dev_.p, d_, X_.p);
    if (y) gather_rows<<<rows, kThreads, 0, stream_>>>(y->device_data(), idx_dev_.p, d_, X_.p + static_cast<size_t>(rows) * d_);
    CMSAE_CUDA(cudaGetLastError());
  }

  // Statistics, encode, loss and latent statistics over the staged X_ = [x; y].
  DeviceForward forward_staged(long rows, int nseg, double w, bool fvu, long long dead_window) {
    const long R = rows * nseg;
    if (R * static_cast<long>(k_) >= (1L << 31) - 1) fail("ERR_SHAPE", "a CUDA training batch needs rows x k < 2^31: use smaller batches");
    DeviceForward f;
    std::vector<double> tv(static_cast<size_t>(nseg) * d_);
    const int chunks = static_cast<int>((rows + kColChunk - 1) / kColChunk);
    col_part_.ensure(static_cast<size_t>(chunks) * d_);
    const dim3 cgrid(static_cast<unsigned>(blocks_for(d_)), static_cast<unsigned>(chunks));
    for (int s = 0; s < nseg; ++s) {
      column_partials<<<cgrid, kThreads, 0, stream_>>>(X_.p, s * rows, rows, d_, nullptr, false, col_part_.p);
      column_finish<<<blocks_for(d_), kThreads, 0, stream_>>>(col_part_.p, chunks, d_, 1.0 / static_cast<double>(rows), false, col_mean_.p);
      column_partials<<<cgrid, kThreads, 0, stream_>>>(X_.p, s * rows, rows, d_, col_mean_.p, true, col_part_.p);
      column_finish<<<blocks_for(d_), kThreads, 0, stream_>>>(col_part_.p, chunks, d_, 1.0, false, col_tv_.p + static_cast<size_t>(s) * d_);
    }
    CMSAE_CUDA(cudaGetLastError());
    col_tv_.download(tv.data(), stream_, tv.size());  // one round trip for both segments
    sync();
    for (int s = 0; s < nseg; ++s) {
      for (int c = 0; c < d_; ++c) f.total_variance[s] += tv[static_cast<size_t>(s) * d_ + c];
      if (fvu && fvu_degenerate(f.total_variance[s], w)) {
        f.degenerate = true;
        return f;
      }
    }
    R_ = R;
    codes_idx_.ensure(static_cast<size_t>(R) * k_);
    codes_val_.ensure(static_cast<size_t>(R) * k_);
    run_encode(X_.p, R, k_, codes_idx_.p, codes_val_.p);
    G_.ensure(static_cast<size_t>(R) * d_);
    dval_.ensure(static_cast<size_t>(R) * k_);
    sse_row_.ensure(R);
    double gs[2] = {0, 0};
    for (int s = 0; s < nseg; ++s) gs[s] = w * 2.0 / (fvu ? f.total_variance[s] : static_cast<double>(rows) * d_);
    forward_loss<<<R, kThreads, 0, stream_>>>(W_dec_.p, b_dec_.p, X_.p, d_, codes_idx_.p, codes_val_.p, k_, rows,
                                                               gs[0], gs[1], G_.p, sse_row_.p, dval_.p);
    CMSAE_CUDA(cudaGetLastError());
    // Latent statistics and the sort keys of the backward.
    const long n = R * k_;
    keys_.ensure(n);
    pos_.ensure(n);
    keys_sorted_.ensure(n);
    pos_sorted_.ensure(n);
    count_.zero(stream_);
    entry_keys<<<blocks_for(n), kThreads, 0, stream_>>>(codes_idx_.p, codes_val_.p, n, m_, count_.p, keys_.p, pos_.p);
    CMSAE_CUDA(cudaGetLastError());
    // Per-segment SSE, active entries and dead latents in one small read-back (the statistics wait for
    // commit_latent_stats: a step that fails leaves them unchanged).
    forward_scalars<<<1, kThreads, 0, stream_>>>(sse_row_.p, rows, nseg, count_.p, m_, since_.p, R, dead_window, scalars_.p);
    CMSAE_CUDA(cudaGetLastError());
    double sc[4];
    scalars_.download(sc, stream_, 4);
    sync();
    f.sse[0] = sc[0];
    f.sse[1] = sc[1];
    f.active = static_cast<long long>(sc[2]);
    f.dead = static_cast<long long>(sc[3]);
    have_forward_ = true;
    return f;
  }

  void download_codes(int32_t* idx, float* val) override {
    require_forward();
    codes_idx_.download(idx, stream_, static_cast<size_t>(R_) * k_);
    codes_val_.download(val, stream_, static_cast<size_t>(R_) * k_);
    sync();
  }

  void add_dval(const float* delta) override {
    require_forward();
    const long n = R_ * k_;
    tmp_.ensure(n);
    tmp_.upload(delta, stream_, n);
    add_into<<<blocks_for(n), kThreads, 0, stream_>>>(dval_.p, tmp_.p, n);
    CMSAE_CUDA(cudaGetLastError());
    sync();
  }

  void commit_latent_stats() override {
    require_forward();
    latent_stats<<<blocks_for(m_), kThreads, 0, stream_>>>(count_.p, m_, R_, fires_.p, since_.p);
    CMSAE_CUDA(cudaGetLastError());  // ordered before every later read of the statistics on the stream
  }

  double backward(bool project) override {
    require_forward();
    const long n = R_ * k_;
    int bits = 1;
    while ((1L << bits) <= m_) ++bits;
    size_t temp_bytes = 0;
    CMSAE_CUDA(cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, keys_.p, keys_sorted_.p, pos_.p, pos_sorted_.p, n, 0, bits, stream_));
    sort_temp_.ensure(temp_bytes);
    CMSAE_CUDA(cub::DeviceRadixSort::SortPairs(sort_temp_.p, temp_bytes, keys_.p, keys_sorted_.p, pos_.p, pos_sorted_.p, n, 0, bits, stream_));
    // offsets = exclusive scan of the per-latent counts (count_[m] is 0).
    size_t scan_bytes = 0;
    CMSAE_CUDA(cub::DeviceScan::ExclusiveSum(nullptr, scan_bytes, count_.p, off_.p, m_ + 1, stream_));
    scan_temp_.ensure(scan_bytes);
    CMSAE_CUDA(cub::DeviceScan::ExclusiveSum(scan_temp_.p, scan_bytes, count_.p, off_.p, m_ + 1, stream_));
    latent_grads<<<m_, kThreads, 0, stream_>>>(off_.p, pos_sorted_.p, codes_val_.p, dval_.p, G_.p, X_.p, b_dec_.p, d_, k_,
                                               g_dec_.p, g_enc_.p, g_benc_.p);
    {  // g_bdec = colsum(G) - sum_j g_benc[j] W_enc[j] (float64, fixed order)
      const int rchunks = static_cast<int>((R_ + kColChunk - 1) / kColChunk), jchunks = (m_ + kColChunk - 1) / kColChunk;
      col_part_.ensure(static_cast<size_t>(std::max(rchunks, jchunks)) * d_);
      column_partials<<<dim3(static_cast<unsigned>(blocks_for(d_)), static_cast<unsigned>(rchunks)), kThreads, 0, stream_>>>(G_.p, 0, R_, d_, nullptr, false, col_part_.p);
      column_finish<<<blocks_for(d_), kThreads, 0, stream_>>>(col_part_.p, rchunks, d_, 1.0, false, col_mean_.p);
      encoder_bias_partials<<<dim3(static_cast<unsigned>(blocks_for(d_)), static_cast<unsigned>(jchunks)), kThreads, 0, stream_>>>(g_benc_.p, W_enc_.p, m_, d_, col_part_.p);
      column_finish<<<blocks_for(d_), kThreads, 0, stream_>>>(col_part_.p, jchunks, d_, -1.0, true, col_mean_.p);
      to_float<<<blocks_for(d_), kThreads, 0, stream_>>>(col_mean_.p, d_, g_bdec_.p);
    }
    if (project) project_rows<<<m_, kThreads, 0, stream_>>>(W_dec_.p, g_dec_.p, d_);
    CMSAE_CUDA(cudaGetLastError());
    have_grads_ = true;
    const long md = static_cast<long>(m_) * d_;
    const float* arrays[4] = {g_enc_.p, g_dec_.p, g_benc_.p, g_bdec_.p};
    const long sizes[4] = {md, md, m_, d_};
    for (int q = 0; q < 4; ++q) sum_squares<<<kSumBlocks, kThreads, 0, stream_>>>(arrays[q], sizes[q], part_.p + q * kSumBlocks);
    CMSAE_CUDA(cudaGetLastError());
    std::vector<double> part(4 * kSumBlocks);
    part_.download(part.data(), stream_, part.size());
    sync();
    double total = 0;
    for (double v : part) total += v;
    return total;
  }

  void download_grads(float* ge, float* gbe, float* gd, float* gbd) override {
    if (!have_grads_) fail("ERR_STATE", "no gradients on the device yet: run a training step first");
    g_enc_.download(ge, stream_);
    g_benc_.download(gbe, stream_);
    g_dec_.download(gd, stream_);
    g_bdec_.download(gbd, stream_);
    sync();
  }

  void apply_update(const DeviceAdamArgs args[4], bool normalize, float eps) override {
    if (!have_grads_) fail("ERR_STATE", "applyUpdate needs gradients: call forwardBackward first");
    float* params[4] = {W_enc_.p, b_enc_.p, W_dec_.p, b_dec_.p};
    const float* grads[4] = {g_enc_.p, g_benc_.p, g_dec_.p, g_bdec_.p};
    const long sizes[4] = {static_cast<long>(m_) * d_, m_, static_cast<long>(m_) * d_, d_};
    for (int q = 0; q < 4; ++q) {
      const long blocks = std::min<long>(blocks_for(sizes[q]), 4096);
      adamw<<<blocks, kThreads, 0, stream_>>>(params[q], mom_[q][0].p, mom_[q][1].p, grads[q], sizes[q], args[q]);
    }
    if (normalize) renorm_rows<<<m_, kThreads, 0, stream_>>>(W_dec_.p, d_, eps);
    CMSAE_CUDA(cudaGetLastError());  // no host sync: every later read-back orders after it on the stream
  }

  void renormalize_decoder(float eps) override {
    renorm_rows<<<m_, kThreads, 0, stream_>>>(W_dec_.p, d_, eps);
    CMSAE_CUDA(cudaGetLastError());
    sync();
  }

  void set_precision(DevicePrecision p) override { precision_ = p; }

 private:
  static constexpr int kSumBlocks = 512;

  void sync() { CMSAE_CUDA(cudaStreamSynchronize(stream_)); }
  void require_forward() const {
    if (!have_forward_) fail("ERR_STATE", "no training forward pass on the device yet");
  }

  // Codes of `rows` device rows X (b_dec subtracted on the fly) into device idx/val [rows, k], in row chunks
  // whose candidate lists fit a 1 GiB budget (and the grid's y limit).
  void run_encode(const float* X, long rows, int k, int32_t* idx, float* val) {
    const int tiles = (m_ + BN - 1) / BN;
    const int kk = std::min(k, BN);
    const long n = static_cast<long>(tiles) * kk;
    long chunk = std::max<long>(BM, ((1L << 30) / (8 * n)) / BM * BM);
    chunk = std::min<long>(chunk, 65535L * BM);
    chunk = std::min<long>(chunk, rows);
    cand_.ensure(static_cast<size_t>(chunk) * n);
    for (long r0 = 0; r0 < rows; r0 += chunk) {
      const long nr = std::min(chunk, rows - r0);
      const float* Xc = X + r0 * d_;
      const dim3 grid(tiles, static_cast<unsigned>((nr + BM - 1) / BM));
      if (precision_ == DevicePrecision::Tf32)
        encode_tiles<Gemm::Tf32><<<grid, kThreads, 0, stream_>>>(Xc, b_dec_.p, W_enc_.p, b_enc_.p, static_cast<int>(nr), d_, m_, kk, cand_.p);
      else if (precision_ == DevicePrecision::Bf16)
        encode_tiles<Gemm::Bf16><<<grid, kThreads, 0, stream_>>>(Xc, b_dec_.p, W_enc_.p, b_enc_.p, static_cast<int>(nr), d_, m_, kk, cand_.p);
      else
        encode_tiles<Gemm::Fp32><<<grid, kThreads, 0, stream_>>>(Xc, b_dec_.p, W_enc_.p, b_enc_.p, static_cast<int>(nr), d_, m_, kk, cand_.p);
      CMSAE_CUDA(cudaGetLastError());
      const int warps = kThreads / 32;
      merge_candidates<<<(nr + warps - 1) / warps, kThreads, 0, stream_>>>(cand_.p, static_cast<int>(nr), tiles, kk, k, m_, idx + r0 * k,
                                                                          val + r0 * k);
      CMSAE_CUDA(cudaGetLastError());
    }
  }

  int d_, m_, k_;
  DevicePrecision precision_;
  cudaStream_t stream_ = nullptr;
  long R_ = 0;
  bool have_forward_ = false, have_grads_ = false;
  DeviceBuffer<float> W_enc_, W_dec_, b_enc_, b_dec_, mom_[4][2], g_enc_, g_dec_, g_benc_, g_bdec_;
  DeviceBuffer<double> fires_, col_tv_, col_mean_, col_part_, part_, sse_row_, scalars_;
  DeviceBuffer<long long> since_;
  DeviceBuffer<int> count_, off_, keys_, pos_, keys_sorted_, pos_sorted_;
  DeviceBuffer<float> X_, G_, dval_, codes_val_, tmp_, dec_val_, dec_out_, inf_X_, inf_val_;
  DeviceBuffer<int32_t> codes_idx_, dec_idx_, inf_idx_;
  DeviceBuffer<unsigned long long> cand_;
  DeviceBuffer<int32_t> idx_dev_;
  DeviceBuffer<unsigned char> sort_temp_, scan_temp_;
};

class CudaRows final : public DeviceRows {
 public:
  CudaRows(long rows, int d) : rows_(rows), d_(d) { buf_.alloc(static_cast<size_t>(rows) * d); }
  long rows() const override { return rows_; }
  int dim() const override { return d_; }
  void upload(long r0, const float* x, long n) override {
    if (r0 < 0 || n < 0 || r0 + n > rows_) fail("ERR_RANGE", "rows [" + std::to_string(r0) + ", " + std::to_string(r0 + n) + ") are outside the " + std::to_string(rows_) + " resident rows");
    CMSAE_CUDA(cudaMemcpy(buf_.p + static_cast<size_t>(r0) * d_, x, sizeof(float) * n * d_, cudaMemcpyHostToDevice));
  }
  const float* device_data() const override { return buf_.p; }

 private:
  long rows_;
  int d_;
  DeviceBuffer<float> buf_;
};

}  // namespace

std::unique_ptr<DeviceRows> create_device_rows(long rows, int d) {
  const DeviceInfo info = query_devices();
  if (!info.available) fail("ERR_CUDA_UNAVAILABLE", "resident rows need a CUDA device (" + info.message + ")");
  return std::make_unique<CudaRows>(rows, d);
}

std::unique_ptr<DeviceSae> create_device_sae(int d, int m, int k, DevicePrecision precision) {
  const DeviceInfo info = query_devices();
  if (!info.available)
    fail("ERR_CUDA_UNAVAILABLE", "device 'cuda' was requested but no CUDA device can be used (" + info.message +
                                     "): use device 'cpu' or 'auto'");
  if (static_cast<long long>(m) * d > (1LL << 31) - 1)
    fail("ERR_ARG", "the CUDA backend needs m * d < 2^31; use device 'cpu'");
  return std::make_unique<CudaSae>(d, m, k, precision);
}

}  // namespace cmsae::cuda
