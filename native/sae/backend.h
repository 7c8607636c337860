// One interface for the engines that run an SAE's training step: the CPU engine (cpu_backend.h) and the CUDA
// backend (cuda/sae_device.cu). SaeModel (model.h) keeps the configuration, the step count, the b_dec
// initialization, clipping and the divergence guard, and drives a backend through this interface only; a new
// op is a method here, implemented once per backend (docs/engine.md). The CPU emulation of the CUDA backend
// (CMSAE_EMULATE_CUDA=1) is the CPU engine on arrays of its own, behind the same interface.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "../common/aligned.h"
#include "backward.h"
#include "kernels.h"
#include "pair_loss.h"

namespace cmsae {

enum class Activation { TopK = 0, BatchTopK = 1 };
// GEMM precision of the fused encode on the device: FP32 (SIMT), TF32 or BF16 tensor cores (FP32 accumulation).
enum class DevicePrecision { Fp32 = 0, Tf32 = 1, Bf16 = 2 };

// The state of an SAE in the host layout: encoder rows [m, d] (latent-major), b_enc [m], W_dec [m, d], b_dec [d];
// AdamW moments [param][moment] (params 0 W_enc rows, 1 b_enc, 2 W_dec, 3 b_dec); latent fire statistics.
struct SaeArrays {
  std::vector<float> W_enc, b_enc, W_dec, b_dec;
  std::vector<float> moments[4][2];
  std::vector<double> fires;
  std::vector<long long> since;
  void allocate(int d, int m);
  std::vector<float>& param(int q) { return q == 0 ? W_enc : q == 1 ? b_enc : q == 2 ? W_dec : b_dec; }
  const std::vector<float>& param(int q) const { return q == 0 ? W_enc : q == 1 ? b_enc : q == 2 ? W_dec : b_dec; }
};
// Parts of SaeArrays, for uploads, downloads and change notices: the encoder (W_enc, b_enc), the decoder (W_dec,
// b_dec), the AdamW moments and the latent statistics.
enum SaePart : unsigned { kEncoder = 1u, kDecoder = 2u, kParams = 3u, kMoments = 4u, kStats = 8u, kAllParts = 15u };

// Codes produced by the last forward pass (kept for the backward and for callers).
struct CodesBuffer {
  long rows = 0;
  int k = 0;
  std::vector<int32_t> idx;
  std::vector<float> val;
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

// One training batch X = [x; y] (y optional, the paired half), from host rows or gathered from resident rows.
struct SaeBatch {
  long rows = 0;                  // rows per half
  const float* x = nullptr;       // host [rows, d]
  const float* y = nullptr;
  const DeviceRows* rx = nullptr;  // resident rows (then x/y are null): X = [rx[idx]; ry[idx]]
  const DeviceRows* ry = nullptr;
  const int32_t* idx = nullptr;
  bool paired() const { return y != nullptr || ry != nullptr; }
  bool resident() const { return rx != nullptr; }
  long total_rows() const { return paired() ? 2 * rows : rows; }
};

struct ForwardArgs {
  Activation activation = Activation::TopK;
  int k = 0;                  // TopK: per row; BatchTopK: the batch keeps rows * k
  int capacity = 0;           // BatchTopK: candidates per row before the exact fallback
  double w = 1.0;             // weight of each segment's loss
  bool fvu = true;            // FVU (denominator: total variance) or MSE (rows * d)
  float aux_coef = 0.f;       // AuxK (off at 0) over the latents with since >= dead_window, k_aux of them
  int k_aux = 0;
  long long dead_window = 0;
  long long stats_window = 0;  // count the latents dead after this batch's commit within this window (0: none)
};

struct ForwardResult {
  int degenerate_segment = -1;  // an FVU segment with too little variance (loss_scale.h): nothing was changed
  double sse[2] = {0, 0};       // per segment
  double total_variance[2] = {0, 0};
  double aux_loss = 0;          // the weighted AuxK loss, summed over segments
  long long active = 0;         // active (value > 0) code entries of the batch
  long long dead = 0;           // latents dead after this batch's statistics (ForwardArgs::stats_window)
  bool kept_any = false;        // BatchTopK: some activation was kept, and min_kept is the smallest
  float min_kept = 0.f;
};

class SaeBackend {
 public:
  virtual ~SaeBackend() = default;
  // True when the backend works on the host arrays themselves (the CPU engine): nothing is ever uploaded or
  // downloaded, and SaeModel tells it through host_arrays_changed() what was written from outside.
  virtual bool on_host_arrays() const = 0;
  virtual void upload(const SaeArrays& host, unsigned parts) = 0;
  virtual void download(SaeArrays& host, unsigned parts) = 0;
  virtual void host_arrays_changed(unsigned parts) {}
  // The k best ReLU pre-activations > floor per row (x: host [rows, d]), best first, padded with value-0 slots
  // holding the smallest unused latent indices.
  virtual void encode(const float* x, long rows, int k, float floor, int32_t* idx, float* val) = 0;
  // encode() that checks x (rows x d) as well: false when x holds a NaN or +-Inf (the codes are then not all
  // written). The default checks first; the CPU engine's certified path checks while it reads the rows.
  virtual bool encode_checking_input(const float* x, long rows, int d, int k, float floor, int32_t* idx, float* val);
  virtual void decode(const int32_t* idx, const float* val, long rows, int k, float* out) = 0;
  // The batch's rows [x; y] as host rows (resident rows are gathered; the first step's b_dec mean).
  virtual void stage(const SaeBatch& batch, float* host) = 0;
  // Training forward: segment statistics, encode (+ AuxK), decode, loss, dL/dx_hat and dL/dval. The latent
  // statistics of the batch wait for commit_latent_stats() (a step that fails leaves them unchanged).
  virtual ForwardResult forward(const SaeBatch& batch, const ForwardArgs& args) = 0;
  virtual const CodesBuffer& codes() = 0;  // the last forward's codes (host)
  // The code-level pair loss of the last (paired) forward; adds weight * dL/dval. Returns L.
  virtual double pair_loss(PairLoss kind, double weight, int m) = 0;
  // Sparse backward (+ decoder-gradient projection; extra_dval: host [R, k] or null); the squared gradient norm.
  virtual double backward(bool project, const float* extra_dval) = 0;
  virtual const SparseGrads& grads() = 0;  // the last backward's gradients (host)
  // fires += count, since = count ? 0 : since + R for the last forward's batch.
  virtual void commit_latent_stats() = 0;
  // AdamW from grads() (args per param), then decoder row renormalization when asked.
  virtual void apply_update(const AdamWArgs args[4], bool normalize, float decoder_eps) = 0;
  virtual void renormalize_decoder(float decoder_eps) = 0;
  virtual void set_precision(DevicePrecision p) = 0;
};

// Factory registered by the CUDA build (nullptr otherwise) or the CPU emulation. It throws
// ERR_CUDA_UNAVAILABLE when no device can be used.
using DeviceSaeFactory = std::unique_ptr<SaeBackend> (*)(int d, int m, int k, DevicePrecision precision);
using DeviceRowsFactory = std::unique_ptr<DeviceRows> (*)(long rows, int d);
void set_device_sae_factory(DeviceSaeFactory f, DeviceRowsFactory rows);
DeviceSaeFactory device_sae_factory();
DeviceRowsFactory device_rows_factory();

}  // namespace cmsae
