// The device (CUDA) half of a Top-K SAE, behind a plain C++ interface: SaeModel keeps the host copy of
// every array and mirrors it to a DeviceSae when its device is CUDA. The implementation lives in cuda/
// (sae_device.cu) and registers its factory at addon load; builds without CUDA have no factory.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

namespace cmsae {

// GEMM precision of the fused encode on the device: FP32 (SIMT), TF32 or BF16 tensor cores (FP32 accumulation).
enum class DevicePrecision { Fp32 = 0, Tf32 = 1, Bf16 = 2 };

struct DeviceAdamArgs {
  float beta1, beta2, eps, decay_factor, step_size, inv_sqrt_bc2, grad_scale;
};

struct DeviceForward {
  bool degenerate = false;    // an FVU segment with too little variance (loss_scale.h; nothing was changed)
  double sse[2] = {0, 0};     // per segment
  double total_variance[2] = {0, 0};
  long long active = 0;       // active (value > 0) code entries of the batch
  long long dead = 0;         // latents not fired within the given window (after this batch's statistics)
};

// Embedding rows kept on the device (a resident training split); device_data() is a device pointer.
class DeviceRows {
 public:
  virtual ~DeviceRows() = default;
  virtual long rows() const = 0;
  virtual int dim() const = 0;
  virtual void upload(long r0, const float* x, long n) = 0;  // host rows [n, dim] into rows [r0, r0 + n)
  virtual const float* device_data() const = 0;
};

class DeviceSae {
 public:
  virtual ~DeviceSae() = default;
  // Parameters in the host layout: encoder rows [m, d] (latent-major), b_enc [m], W_dec [m, d], b_dec [d].
  virtual void upload_params(const float* W_enc_rows, const float* b_enc, const float* W_dec, const float* b_dec) = 0;
  virtual void download_params(float* W_enc_rows, float* b_enc, float* W_dec, float* b_dec) = 0;
  // AdamW moments: [param][moment], params 0 W_enc rows, 1 b_enc, 2 W_dec, 3 b_dec.
  virtual void upload_moments(const float* const moments[4][2]) = 0;
  virtual void download_moments(float* const moments[4][2]) = 0;
  virtual void upload_latent_stats(const double* fires, const long long* since) = 0;
  virtual void download_latent_stats(double* fires, long long* since) = 0;
  // Inference: x (host, [rows, d]) -> the k best ReLU pre-activations per row, best first, padded with
  // value-0 slots holding the smallest unused latent indices (the CPU engine's convention).
  virtual void encode(const float* x, long rows, int k, int32_t* idx, float* val) = 0;
  virtual void decode(const int32_t* idx, const float* val, long rows, int k, float* out) = 0;
  // Training forward over X = [x; y] (y may be null): segment statistics, encode, decode, dL/dx_hat
  // (scaled by w * 2 / denominator per segment) and dL/dval. fvu selects the denominator (total variance) or
  // MSE (rows * d); a degenerate FVU segment (loss_scale.h) changes nothing. The latent statistics of the batch
  // are counted but applied only by commit_latent_stats() (a step that fails leaves them unchanged).
  // dead_window: count latents whose samples-since-fired would be at least this after the commit (0: none).
  virtual DeviceForward forward(const float* x, const float* y, long rows, double w, bool fvu, long long dead_window) = 0;
  // The same over resident rows: X = [x[idx]; y[idx]] gathered on the device (idx: host, [rows]).
  virtual DeviceForward forward_rows(const DeviceRows& x, const DeviceRows* y, const int32_t* idx, long rows, double w, bool fvu,
                                     long long dead_window) = 0;
  // Gathers resident rows into the staging buffer without a forward, and reads the staging buffer back
  // (the first step's b_dec mean initialization).
  virtual void stage_rows(const DeviceRows& x, const DeviceRows* y, const int32_t* idx, long rows) = 0;
  virtual void download_staged(float* host, long values) = 0;
  // The last forward's codes ([R, k], host copies) and an additive correction of dL/dval (code-level losses).
  virtual void download_codes(int32_t* idx, float* val) = 0;
  virtual void add_dval(const float* delta) = 0;
  // Applies the last forward's latent statistics: fires += count, since = count ? 0 : since + R.
  virtual void commit_latent_stats() = 0;
  // Sparse backward (+ decoder-gradient projection); returns the squared global gradient norm.
  virtual double backward(bool project) = 0;
  // Dense gradients in the host layout (encoder rows [m, d]).
  virtual void download_grads(float* g_W_enc_rows, float* g_b_enc, float* g_W_dec, float* g_b_dec) = 0;
  virtual void apply_update(const DeviceAdamArgs args[4], bool normalize, float decoder_eps) = 0;
  virtual void renormalize_decoder(float decoder_eps) = 0;
  virtual void set_precision(DevicePrecision p) = 0;
};

// Factory registered by the CUDA build (nullptr otherwise). It throws ERR_CUDA_UNAVAILABLE when no
// device can be used.
using DeviceSaeFactory = std::unique_ptr<DeviceSae> (*)(int d, int m, int k, DevicePrecision precision);
using DeviceRowsFactory = std::unique_ptr<DeviceRows> (*)(long rows, int d);
void set_device_sae_factory(DeviceSaeFactory f, DeviceRowsFactory rows);
DeviceSaeFactory device_sae_factory();
DeviceRowsFactory device_rows_factory();

}  // namespace cmsae
