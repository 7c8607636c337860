// The Top-K SAE: configuration, the state in the host layout, the step count, the b_dec initialization, clipping
// and the divergence guard, driving one backend (backend.h: the CPU engine or the CUDA backend) for every op.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "backend.h"
#include "pair_loss.h"
#include "update_guard.h"

namespace cmsae {

enum class LossKind { Fvu = 0, Mse = 1 };

struct SaeConfig {
  int d = 0, m = 0, k = 0;
  Activation activation = Activation::TopK;
  LossKind loss = LossKind::Fvu;
  bool normalize_decoder = true;      // unit-norm decoder rows after every update
  bool project_decoder_grad = true;   // remove the gradient component parallel to each decoder row
  float max_grad_norm = 1.0f;         // global clipping; <= 0 disables
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 0.f;
  bool decay_W_enc = true, decay_b_enc = false, decay_W_dec = true, decay_b_dec = false;
  bool paired_mean = false;           // paired batch: loss = (L(x)+L(y))/2 instead of L(x)+L(y)
  float decoder_eps = 1.1920929e-7f;  // W_dec[j] /= ||W_dec[j]|| + eps
  // AuxK (off when aux_coef == 0)
  int k_aux = 0;                          // 0 = d/2
  float aux_coef = 0.f;
  long long dead_window = 1000000;        // samples without firing after which a latent is dead
  // BatchTopK
  int batch_capacity = 0;                 // per-row candidate capacity; 0 = min(m, 4k)
  float threshold_momentum = 0.99f;       // theta <- mom*theta + (1-mom)*min kept activation
  // Code-level loss between the halves of a paired batch (shared-SAE baselines): loss += weight * L_pair.
  PairLoss pair_loss = PairLoss::None;
  float pair_loss_weight = 0.f;
  // Where the arrays live and the steps run: the CPU engine, or the CUDA backend (TopK activation, no AuxK).
  bool cuda = false;
  DevicePrecision precision = DevicePrecision::Tf32;
};

struct StepStats {
  double loss = 0, fvu = 0, mse = 0, aux_loss = 0, l0 = 0, dead_fraction = 0, grad_norm = 0;
  double pair_loss = 0;  // the unweighted code-level pair loss (0 without a pair or when off)
  long long rows = 0;
};

class SaeModel {
 public:
  explicit SaeModel(const SaeConfig& cfg);  // zero parameters; call init() or set weights
  ~SaeModel();
  void init(uint64_t seed);                 // W_enc ~ U(+-1/sqrt d), b_enc = 0, W_dec = rownorm(W_enc), b_dec = 0

  const SaeConfig& config() const { return cfg_; }
  SaeConfig& mutable_config() { return cfg_; }
  int d() const { return cfg_.d; }
  int m() const { return cfg_.m; }

  // Parameters (encoder rows are latent-major [m, d]; SAELens W_enc [d, m] is their transpose). Every accessor
  // first brings the host copy up to date (a device backend's arrays are newer after a step); mutable access
  // tells the backend that the host copy changed (the CPU engine repacks its encoder; a device re-uploads).
  float* W_enc_rows() { edit(kEncoder); return host_.W_enc.data(); }
  float* b_enc() { edit(kEncoder); return host_.b_enc.data(); }
  float* W_dec() { edit(kDecoder); return host_.W_dec.data(); }
  float* b_dec() { edit(kDecoder); return host_.b_dec.data(); }
  const float* W_enc_rows() const { view(kEncoder); return host_.W_enc.data(); }
  const float* W_dec() const { view(kDecoder); return host_.W_dec.data(); }
  const float* b_enc() const { view(kEncoder); return host_.b_enc.data(); }
  const float* b_dec() const { view(kDecoder); return host_.b_dec.data(); }

  // Moves the model to the CUDA backend (ERR_CUDA_UNAVAILABLE without a device or a CUDA build) or back.
  void set_device(bool cuda, DevicePrecision precision);
  bool on_device() const { return !backend_->on_host_arrays(); }

  // Inference encode. TopK: the k best per row. BatchTopK: latents above the running threshold,
  // at most capacity() per row. Output rows are [rows, capacity()].
  int capacity() const;
  void encode(const float* x, long rows, int32_t* idx, float* val) const;
  // encode() that checks x as well (where the engine can, while it reads the rows): false when x holds a NaN or
  // +-Inf, and then the codes are not all written.
  bool encode_checking_input(const float* x, long rows, int32_t* idx, float* val) const;
  // The inference encode's floor: BatchTopK's running threshold once learned (>= 0), else 0 (plain Top-K).
  float encode_floor() const;
  void decode(const int32_t* idx, const float* val, long rows, int k, float* out) const;

  // Forward + backward over one batch (x: [rows, d]; y: optional paired batch of the same shape that
  // goes through the same SAE). Leaves gradients in grads() (projected if enabled, not clipped).
  // A non-finite loss or gradient is ERR_DIVERGED and changes nothing (parameters, moments, step count,
  // latent statistics, threshold); every training entry point below keeps that promise.
  StepStats forward_backward(const float* x, const float* y, long rows, const float* extra_dval = nullptr);
  // forward_backward / step over rows resident on the CUDA device: x[idx] (and y[idx]) (idx: [rows]).
  StepStats forward_backward_rows(const DeviceRows& x, const DeviceRows* y, const int32_t* idx, long rows, const float* extra_dval);
  StepStats step_rows(const DeviceRows& x, const DeviceRows* y, const int32_t* idx, long rows, float lr);
  // AdamW update from grads() with the given lr and gradient scale, then decoder renormalization. An update
  // that would make a parameter or a moment non-finite is ERR_DIVERGED and leaves the model as it was.
  void apply_update(float lr, float grad_scale);
  // forward_backward + clipping + apply_update.
  StepStats step(const float* x, const float* y, long rows, float lr);

  const SparseGrads& grads() const { return backend_->grads(); }
  bool has_grads() const { return has_grads_; }
  const CodesBuffer& last_codes() const { return backend_->codes(); }

  // Optimizer and statistics state (exposed for checkpoints).
  long long step_count() const { return t_; }
  void set_step_count(long long t) { t_ = t; }
  std::vector<float>& adam_state(int param, int moment);  // param: 0 W_enc,1 b_enc,2 W_dec,3 b_dec; moment 0/1
  const std::vector<float>& adam_state(int param, int moment) const {
    view(kMoments);
    return host_.moments[param][moment];
  }
  const std::vector<double>& fire_counts() const { view(kStats); return host_.fires; }
  const std::vector<long long>& since_fired() const { view(kStats); return host_.since; }
  // The dead fraction of the last device step (readable while an async step runs; no device access).
  double last_dead_fraction() const { return last_dead_fraction_; }
  std::vector<double>& fire_counts() { edit(kStats); return host_.fires; }
  std::vector<long long>& since_fired() { edit(kStats); return host_.since; }
  long long samples_seen() const { return seen_; }
  void set_samples_seen(long long n) { seen_ = n; }
  double threshold() const { return theta_; }
  bool threshold_ready() const { return theta_ready_; }
  void set_threshold(double theta, bool ready) { theta_ = theta; theta_ready_ = ready; }
  bool b_dec_mean_init_pending() const { return b_dec_mean_pending_; }
  // Updates that could not be proven overflow-free in advance and ran checked on a snapshot (slower).
  long long checked_updates() const { return checked_updates_; }
  void set_b_dec_mean_init_pending(bool v) { b_dec_mean_pending_ = v; }
  double dead_fraction() const;
  void renormalize_decoder();

 private:
  // The host copy and the backend's: view() downloads the parts the backend has newer; edit() also notes that
  // the host is about to change them (bounds unknown; the backend learns of it); sync() uploads what the backend
  // lacks before it runs; backend_wrote() notes what a backend op changed. All no-ops on the CPU engine, which
  // works on the host arrays themselves, except the change notices.
  void view(unsigned parts) const;
  void edit(unsigned parts);
  void sync() const;
  void backend_wrote(unsigned parts);
  // Forward + backward without committing anything a failed step must not leave behind: the latent statistics
  // wait in the backend for commit_step(); discard_step() undoes the first-batch b_dec mean and the threshold.
  StepStats forward_pass(const SaeBatch& batch, const float* extra_dval);
  ForwardArgs forward_args(double w, long R) const;
  void init_b_dec_mean(const SaeBatch& batch, double w);
  StepStats step_stats(const ForwardResult& f, const SaeBatch& batch, double w, const ForwardArgs& a) const;
  void commit_step(StepStats& st);
  void discard_step();
  // The second half of step / step_rows: clipping and the update, then commit_step (discard_step on failure).
  StepStats update_and_commit(StepStats st, float lr);
  // The end of every forward pass: ERR_DIVERGED (after discard_step) unless loss and gradients are finite.
  void require_finite_step(const StepStats& st);
  float clip_scale(const StepStats& st) const;
  SaeBatch resident_batch(const DeviceRows& x, const DeviceRows* y, const int32_t* idx, long rows) const;
  // The update itself (the backend), and the checked variant that runs on a snapshot.
  void run_update(const AdamWArgs args[4]);
  void guarded_update(const AdamWArgs args[4], float lr);
  // Exact bounds of the four parameter groups from the host arrays; false when some value is unusable.
  bool scan_all_bounds(ArrayBounds out[4]) const;

  SaeConfig cfg_;
  mutable SaeArrays host_;  // mutable: a const read may first download what a device backend has newer
  std::unique_ptr<SaeBackend> backend_;
  mutable unsigned host_stale_ = 0;     // parts the backend has newer than host_
  mutable unsigned backend_stale_ = 0;  // parts host_ has newer than the backend
  long long t_ = 0;
  long long seen_ = 0;
  double theta_ = 0;
  bool theta_ready_ = false;
  bool b_dec_mean_pending_ = false;
  bool has_grads_ = false;
  double last_dead_fraction_ = 0;
  // What the last forward pass has not committed yet (see forward_pass).
  struct PendingStep {
    long rows = 0;
    bool b_dec_mean_applied = false;
    std::vector<float> b_dec_before;
    double theta = 0;
    bool theta_ready = false;
  } pending_;
  // Divergence guard: bounds of W_enc, b_enc, W_dec, b_dec and their moments (update_guard.h); unknown after
  // any outside write. last_grad_norm_ bounds every gradient entry of the last forward pass.
  ArrayBounds bounds_[4];
  bool bounds_known_ = false;
  double last_grad_norm_ = 0;
  long long checked_updates_ = 0;
};

}  // namespace cmsae
