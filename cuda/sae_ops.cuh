// Host-side launchers of the CUDA SAE training step's kernels, one op file each, mirroring native/sae/:
//   topk_encode.cu   z = TopK_k(ReLU((x - b_dec) W_enc^T + b_enc))      native/sae/topk_encode.cc topk_encode
//   decode_loss.cu   x_hat, dL/dx_hat, dL/dval; plain decode              native/sae/decode.cc decode_with_gradient
//   batch_stats.cu   staged rows, column sums, segment total variance     native/sae/batch_stats.cc column_stats
//   latent_stats.cu  fire counts, sort keys, forward scalars, the commit   native/sae/cpu_backend.cc commit_latent_stats
//   backward.cu      sparse backward, decoder-gradient projection, norm   native/sae/backward.cc sparse_backward
//   adamw.cu         AdamW, decoder row renormalization                   native/sae/kernels_impl.h adamw
// A launcher enqueues its kernels on `stream` with the launch configuration of the training step and never
// synchronizes. launch_topk_encode and launch_sort_by_latent check their launches; after the others the caller
// checks cudaGetLastError (CudaSae does, where it always did). To debug a GPU run op by op, call one launcher,
// check, synchronize and compare its output with the CPU reference named at the top of its file.
// Pointers are device arrays in the layouts of native/sae/backend.h: X, G [R, d]; idx, val, dval [R, k];
// W_enc rows, W_dec [m, d].
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "../native/sae/backend.h"
#include "cuda_check.h"

namespace cmsae::cuda {

constexpr int kThreads = 256;        // threads of every SAE kernel's block
constexpr int kEncodeTileRows = 64;  // rows of an encode tile
constexpr int kColChunk = 256;       // rows (or latents) per partial column sum
constexpr int kSumBlocks = 512;      // partial sums written by one launch_sum_squares

inline long blocks_for(long n, int threads = kThreads) { return (n + threads - 1) / threads; }

// ---- topk_encode.cu ----
// idx/val[r, 0..k) for rows X[0..rows): the k best positive pre-activations, best first, padded with value-0
// slots holding the smallest unused latents; row chunks whose candidate lists (cand) fit 1 GiB.
void launch_topk_encode(const float* X, long rows, int k, const float* W_enc, const float* b_enc, const float* b_dec, int d,
                        int m, DevicePrecision precision, DeviceBuffer<unsigned long long>& cand, int32_t* idx, float* val,
                        cudaStream_t stream);

// ---- decode_loss.cu ----
// out[r] = b_dec + sum_s val[r, s] W_dec[idx[r, s]] for r < rows.
void launch_decode_rows(const float* W_dec, const float* b_dec, int d, const int32_t* idx, const float* val, long rows, int k,
                        float* out, cudaStream_t stream);
// Rows r < R: e = x_hat - X[r], G[r] = gscale(seg) e (gscale0 for r < seg_rows, else gscale1), sse_row[r] = |e|^2,
// dval[r, s] = G[r] . W_dec[idx[r, s]] for active slots (0 otherwise).
void launch_forward_loss(const float* W_dec, const float* b_dec, const float* X, int d, const int32_t* idx, const float* val,
                         int k, long R, long seg_rows, double gscale0, double gscale1, float* G, double* sse_row, float* dval,
                         cudaStream_t stream);
// a[i] += b[i] (an extra dL/dval from code-level losses).
void launch_add_into(float* a, const float* b, long n, cudaStream_t stream);

// ---- batch_stats.cu ----
// out[r] = src[idx[r]] for r < rows (a resident batch staged on the device).
void launch_gather_rows(const float* src, const int32_t* idx, long rows, int d, float* out, cudaStream_t stream);
// part[chunk, c] = sum over the chunk's rows of (X[r, c] - shift[c]) (squared when sq), chunks of kColChunk rows.
void launch_column_partials(const float* X, long r0, long rows, int d, const double* shift, bool sq, int chunks, double* part,
                            cudaStream_t stream);
// out[c] = scale * sum_chunk part[chunk, c] (+ out[c] when accumulate).
void launch_column_finish(const double* part, int chunks, int d, double scale, bool accumulate, double* out,
                          cudaStream_t stream);
// Segment s < nseg of X (rows [s rows, (s + 1) rows)): mean[c] (scratch), tv[s d + c] = sum_r (X[r, c] - mean[c])^2.
void launch_segment_variance(const float* X, long rows, int nseg, int d, DeviceBuffer<double>& part, double* mean, double* tv,
                             cudaStream_t stream);

// ---- latent_stats.cu ----
// count[idx[p]] += 1 (count zeroed before) and keys[p] = idx[p], pos[p] = p for active entries (key m otherwise).
void launch_entry_keys(const int32_t* idx, const float* val, long n, int m, int* count, int* keys, int* pos, cudaStream_t stream);
// out = {sse of segment 0, sse of segment 1, active entries, latents dead (since >= window) once R rows are committed}.
void launch_forward_scalars(const double* sse_row, long rows, int nseg, const int* count, int m, const long long* since,
                            long long R, long long window, double* out, cudaStream_t stream);
// fires[j] += count[j]; since[j] = count[j] ? 0 : since[j] + R.
void launch_latent_stats(const int* count, int m, long long R, double* fires, long long* since, cudaStream_t stream);

// ---- backward.cu ----
// The n entries sorted by latent (keys in [0, m]; stable, so by position within a latent) and off = the exclusive
// scan of count[0..m] (count[m] = 0): latent j's entries are pos_sorted[off[j] .. off[j+1]).
void launch_sort_by_latent(const int* keys, const int* pos, long n, int m, int* count, int* keys_sorted, int* pos_sorted,
                           int* off, DeviceBuffer<unsigned char>& sort_temp, DeviceBuffer<unsigned char>& scan_temp,
                           cudaStream_t stream);
// g_dec[j] = sum val_p G_r; g_enc[j] = sum dval_p x_r - (sum dval_p) b_dec; g_benc[j] = sum dval_p (r = p / k).
void launch_latent_grads(const int* off, const int* pos_sorted, const float* val, const float* dval, const float* G,
                         const float* X, const float* b_dec, int m, int d, int k, float* g_dec, float* g_enc, float* g_benc,
                         cudaStream_t stream);
// g_bdec = colsum(G[0..R)) - sum_j g_benc[j] W_enc[j] in float64 (sum: [d] float64 scratch), then rounded to float.
void launch_decoder_bias_grad(const float* G, long R, const float* g_benc, const float* W_enc, int m, int d,
                              DeviceBuffer<double>& part, double* sum, float* g_bdec, cudaStream_t stream);
// g_dec[j] -= (g_dec[j] . W_dec[j]) W_dec[j] for every latent j < m.
void launch_project_rows(const float* W_dec, float* g_dec, int m, int d, cudaStream_t stream);
// part[0..kSumBlocks) = partial sums of a[i]^2 over i < n (their sum is the square norm; fixed grid: deterministic).
void launch_sum_squares(const float* a, long n, double* part, cudaStream_t stream);

// ---- adamw.cu ----
// AdamW on n values (the torch formula of the CPU kernel; see adamw.cu).
void launch_adamw(float* p, float* m1, float* m2, const float* g, long n, const AdamWArgs& a, cudaStream_t stream);
// W[j] /= ||W[j]|| + eps for every row j < m.
void launch_renorm_rows(float* W, int m, int d, float eps, cudaStream_t stream);

}  // namespace cmsae::cuda
