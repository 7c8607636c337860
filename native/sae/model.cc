// The Top-K SAE's training step, backend-independent: b_dec initialization -> backend forward (encode, decode,
// loss) -> code-level pair loss -> backend backward -> (model_update.cc) clipping -> AdamW -> renormalization,
// with every failure leaving the model as it was.
#include "model.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "../common/errors.h"
#include "../common/memory.h"
#include "../common/validate.h"
#include "batch_stats.h"
#include "cpu_backend.h"
#include "loss_scale.h"

namespace cmsae {
namespace {

// splitmix64: small, seedable, and identical on every platform.
struct SplitMix64 {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  float uniform01() { return static_cast<float>(next() >> 40) * (1.0f / 16777216.0f); }
};

// What a step needs finite (fvu is only a diagnostic under loss 'mse', NaN for a batch without variance).
bool finite_stats(const StepStats& st) {
  return std::isfinite(st.loss) && std::isfinite(st.mse) && std::isfinite(st.aux_loss) && std::isfinite(st.pair_loss) &&
         std::isfinite(st.grad_norm);
}

}  // namespace

SaeModel::SaeModel(const SaeConfig& cfg) : cfg_(cfg) {
  const size_t md = static_cast<size_t>(cfg.m) * cfg.d;
  // weights (2), AdamW moments (4), gradient rows (2) and the packed encoder (1), float32 each
  require_memory(9.0 * 4.0 * static_cast<double>(md), "an SAE with d = " + std::to_string(cfg.d) + ", m = " +
                                                          std::to_string(cfg.m));
  host_.allocate(cfg.d, cfg.m);
  backend_ = std::make_unique<CpuBackend>(&host_, cfg.d, cfg.m, cfg.k);
  if (cfg.cuda) set_device(true, cfg.precision);
}

SaeModel::~SaeModel() = default;

// ---- the backend and the host copy ---------------------------------------------------------------------

void SaeModel::set_device(bool cuda, DevicePrecision precision) {
  cfg_.cuda = cuda;
  cfg_.precision = precision;
  if (!cuda) {
    if (on_device()) {
      view(kAllParts);
      auto cpu = std::make_unique<CpuBackend>(&host_, cfg_.d, cfg_.m, cfg_.k);
      if (has_grads_) cpu->adopt_step(backend_->grads(), backend_->codes());  // an update may follow on the CPU
      backend_ = std::move(cpu);
      host_stale_ = backend_stale_ = 0;
    }
    return;
  }
  if (on_device()) {
    backend_->set_precision(precision);
    return;
  }
  DeviceSaeFactory make = device_sae_factory();
  if (!make)
    fail("ERR_CUDA_UNAVAILABLE", "this build of crossmodal-sae has no CUDA backend (it was built without nvcc): use device 'cpu' or 'auto'");
  require(cfg_.activation == Activation::TopK, "ERR_ARG", "the CUDA backend runs activation 'topk' only (BatchTopK is CPU-only for now): use device 'cpu'");
  require(!(cfg_.aux_coef > 0.f), "ERR_ARG", "the CUDA backend has no AuxK yet (auxCoef must be 0): use device 'cpu'");
  backend_ = make(cfg_.d, cfg_.m, cfg_.k, precision);
  backend_stale_ = kAllParts;
  host_stale_ = 0;
  has_grads_ = false;
}

void SaeModel::view(unsigned parts) const {
  const unsigned need = host_stale_ & parts;
  if (!need) return;
  backend_->download(host_, need);
  host_stale_ &= ~need;
}

void SaeModel::edit(unsigned parts) {
  view(parts);
  if (parts & (kParams | kMoments)) bounds_known_ = false;
  if (backend_->on_host_arrays()) backend_->host_arrays_changed(parts);
  else backend_stale_ |= parts;
}

void SaeModel::sync() const {
  if (!backend_stale_) return;
  backend_->upload(host_, backend_stale_);
  backend_stale_ = 0;
}

void SaeModel::backend_wrote(unsigned parts) {
  if (!backend_->on_host_arrays()) host_stale_ |= parts;
}

// ---- initialization and inference ------------------------------------------------------------------------

void SaeModel::init(uint64_t seed) {
  edit(kParams);
  SplitMix64 rng{seed};
  const float bound = 1.0f / std::sqrt(static_cast<float>(cfg_.d));
  for (float& w : host_.W_enc) w = (2.f * rng.uniform01() - 1.f) * bound;
  std::fill(host_.b_enc.begin(), host_.b_enc.end(), 0.f);
  std::copy(host_.W_enc.begin(), host_.W_enc.end(), host_.W_dec.begin());
  renormalize_rows(host_.W_dec.data(), cfg_.d, cfg_.m, cfg_.decoder_eps);  // on the host on every backend
  std::fill(host_.b_dec.begin(), host_.b_dec.end(), 0.f);
}

void SaeModel::renormalize_decoder() {
  edit(kDecoder);
  renormalize_rows(host_.W_dec.data(), cfg_.d, cfg_.m, cfg_.decoder_eps);
}

int SaeModel::capacity() const {
  if (cfg_.activation == Activation::TopK) return cfg_.k;
  const int cap = cfg_.batch_capacity > 0 ? cfg_.batch_capacity : 4 * cfg_.k;
  return std::min(std::max(cap, cfg_.k), cfg_.m);
}

void SaeModel::encode(const float* x, long rows, int32_t* idx, float* val) const {
  sync();
  backend_->encode(x, rows, capacity(), encode_floor(), idx, val);
  check_output_finite(val, rows, capacity(), "encoding");
}

bool SaeModel::encode_checking_input(const float* x, long rows, int32_t* idx, float* val) const {
  sync();
  if (!backend_->encode_checking_input(x, rows, cfg_.d, capacity(), encode_floor(), idx, val)) return false;
  check_output_finite(val, rows, capacity(), "encoding");
  return true;
}

float SaeModel::encode_floor() const {
  if (cfg_.activation == Activation::BatchTopK && theta_ready_) return std::max(0.f, static_cast<float>(theta_));
  return 0.f;
}

// The SaeBackend default (backend.h has no source file of its own): check x first, then encode.
bool SaeBackend::encode_checking_input(const float* x, long rows, int d, int k, float floor, int32_t* idx, float* val) {
  if (any_nonfinite_parallel(x, rows * static_cast<long>(d))) return false;
  encode(x, rows, k, floor, idx, val);
  return true;
}

void SaeModel::decode(const int32_t* idx, const float* val, long rows, int k, float* out) const {
  sync();
  backend_->decode(idx, val, rows, k, out);
  check_output_finite(out, rows, cfg_.d, "decoding");
}

std::vector<float>& SaeModel::adam_state(int param, int moment) {
  edit(kMoments);
  return host_.moments[param][moment];
}

double SaeModel::dead_fraction() const {
  view(kStats);
  const long long window = std::min<long long>(cfg_.dead_window, seen_);
  if (window <= 0 || cfg_.m == 0) return 0.0;
  long long dead = 0;
  for (long long s : host_.since) dead += (s >= window);
  return static_cast<double>(dead) / cfg_.m;
}

// ---- the training forward pass -----------------------------------------------------------------------------

ForwardArgs SaeModel::forward_args(double w, long R) const {
  ForwardArgs a;
  a.activation = cfg_.activation;
  a.k = cfg_.k;
  a.capacity = capacity();
  a.w = w;
  a.fvu = cfg_.loss == LossKind::Fvu;
  a.aux_coef = cfg_.aux_coef;
  a.k_aux = cfg_.k_aux;
  a.dead_window = cfg_.dead_window;
  a.stats_window = std::min<long long>(cfg_.dead_window, seen_ + R);  // dead_fraction()'s window after this batch
  return a;
}

// The first training batch's column means become b_dec (bDecInit 'mean'). A degenerate FVU batch must leave
// everything unchanged, so it is refused before the mean is applied.
void SaeModel::init_b_dec_mean(const SaeBatch& b, double w) {
  const int d = cfg_.d, n_seg = b.paired() ? 2 : 1;
  const long R = b.total_rows();
  std::vector<float> staged;
  const float* X = b.x;
  if (b.resident() || b.y) {
    sync();
    staged.resize(static_cast<size_t>(R) * d);
    backend_->stage(b, staged.data());
    X = staged.data();
  }
  if (cfg_.loss == LossKind::Fvu)
    for (int s = 0; s < n_seg; ++s) {
      const double tv = column_stats(X + s * b.rows * d, b.rows, d).total_variance;
      if (fvu_degenerate(tv, w)) fail_degenerate_batch(tv);
    }
  edit(kDecoder);
  pending_.b_dec_before = host_.b_dec;
  pending_.b_dec_mean_applied = true;
  for (int c = 0; c < d; ++c) {
    double s = 0;
    for (long r = 0; r < R; ++r) s += X[r * d + c];
    host_.b_dec[c] = static_cast<float>(s / R);
  }
  b_dec_mean_pending_ = false;
}

StepStats SaeModel::step_stats(const ForwardResult& f, const SaeBatch& b, double w, const ForwardArgs& a) const {
  const int n_seg = b.paired() ? 2 : 1;
  StepStats st;
  st.rows = b.total_rows();
  for (int s = 0; s < n_seg; ++s) {
    const double fvu = f.sse[s] / f.total_variance[s];
    const double mse = f.sse[s] / (static_cast<double>(b.rows) * cfg_.d);
    st.fvu += fvu / n_seg;
    st.mse += mse / n_seg;
    st.loss += w * (cfg_.loss == LossKind::Fvu ? fvu : mse);
  }
  st.aux_loss = f.aux_loss;
  st.loss += st.aux_loss;
  st.l0 = static_cast<double>(f.active) / st.rows;
  st.dead_fraction = a.stats_window > 0 && cfg_.m > 0 ? static_cast<double>(f.dead) / cfg_.m : 0.0;
  return st;
}

StepStats SaeModel::forward_pass(const SaeBatch& b, const float* extra_dval) {
  require(b.rows > 0, "ERR_SHAPE", "empty batch: give at least one row");
  require(extra_dval == nullptr || cfg_.activation == Activation::TopK, "ERR_ARG",
          "code-level gradients need fixed-k codes (activation 'topk')");
  pending_.rows = 0;
  pending_.b_dec_mean_applied = false;
  pending_.theta = theta_;
  pending_.theta_ready = theta_ready_;
  has_grads_ = false;
  const double w = (b.paired() && cfg_.paired_mean) ? 0.5 : 1.0;
  if (b_dec_mean_pending_) init_b_dec_mean(b, w);
  sync();
  const ForwardArgs args = forward_args(w, b.total_rows());
  const ForwardResult f = backend_->forward(b, args);
  if (f.degenerate_segment >= 0) {
    discard_step();
    fail_degenerate_batch(f.total_variance[f.degenerate_segment]);
  }
  if (f.kept_any) {  // BatchTopK's running threshold
    const double mom = cfg_.threshold_momentum;
    theta_ = theta_ready_ ? mom * theta_ + (1.0 - mom) * f.min_kept : f.min_kept;
    theta_ready_ = true;
  }
  StepStats st = step_stats(f, b, w, args);
  if (b.paired() && cfg_.pair_loss != PairLoss::None && cfg_.pair_loss_weight > 0.f) {
    st.pair_loss = backend_->pair_loss(cfg_.pair_loss, cfg_.pair_loss_weight, cfg_.m);
    st.loss += cfg_.pair_loss_weight * st.pair_loss;
  }
  pending_.rows = st.rows;
  st.grad_norm = std::sqrt(backend_->backward(cfg_.project_decoder_grad, extra_dval));
  require_finite_step(st);
  return st;
}

void SaeModel::require_finite_step(const StepStats& st) {
  if (finite_stats(st)) {
    has_grads_ = true;
    last_grad_norm_ = st.grad_norm;
    return;
  }
  discard_step();
  fail("ERR_DIVERGED", "the training step diverged: its loss or gradient is not finite (loss " + std::to_string(st.loss) +
                           ", gradient norm " + std::to_string(st.grad_norm) +
                           "); the model was left as it was. Lower the learning rate, normalize or rescale the inputs, "
                           "or keep gradient clipping on (maxGradNorm)");
}

void SaeModel::discard_step() {
  if (pending_.b_dec_mean_applied) {
    edit(kDecoder);
    host_.b_dec = pending_.b_dec_before;
    b_dec_mean_pending_ = true;
    pending_.b_dec_mean_applied = false;
  }
  theta_ = pending_.theta;
  theta_ready_ = pending_.theta_ready;
  pending_.rows = 0;
}

void SaeModel::commit_step(StepStats& st) {
  const long R = pending_.rows;
  pending_.b_dec_mean_applied = false;
  pending_.rows = 0;
  seen_ += R;
  backend_->commit_latent_stats();
  backend_wrote(kStats);
  last_dead_fraction_ = st.dead_fraction;
}

StepStats SaeModel::forward_backward(const float* x, const float* y, long rows, const float* extra_dval) {
  SaeBatch b;
  b.rows = rows;
  b.x = x;
  b.y = y;
  StepStats st = forward_pass(b, extra_dval);
  commit_step(st);
  return st;
}

}  // namespace cmsae
