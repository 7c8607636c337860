// Top-K SAE training step: fused encode -> sparse decode -> FVU/MSE (+AuxK) -> sparse backward ->
// decoder-gradient projection -> global-norm clipping -> AdamW -> decoder row renormalization.
#include "model.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "../common/errors.h"
#include "../common/memory.h"
#include "../common/thread_pool.h"
#include "../common/validate.h"
#include "decode.h"
#include "kernels.h"
#include "loss_scale.h"
#include "topk_encode.h"
#include "topk_select.h"

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

struct ColumnStats {
  std::vector<double> mean;
  double total_variance = 0;  // sum over rows and columns of (x - column mean)^2
};

ColumnStats column_stats(const float* X, long rows, int d) {
  ColumnStats s;
  s.mean.assign(d, 0.0);
  const int T = static_cast<int>(std::max<long>(1, std::min<long>(num_threads(), rows / 64 + 1)));
  std::vector<std::vector<double>> part(T, std::vector<double>(d, 0.0));
  parallel_for(T, [&](int t) {
    std::vector<double>& p = part[t];
    for (long r = split_begin(rows, T, t); r < split_begin(rows, T, t + 1); ++r)
      for (int c = 0; c < d; ++c) p[c] += X[r * d + c];
  });
  for (int t = 0; t < T; ++t)
    for (int c = 0; c < d; ++c) s.mean[c] += part[t][c];
  for (int c = 0; c < d; ++c) s.mean[c] /= static_cast<double>(rows);
  std::vector<double> tv(T, 0.0);
  parallel_for(T, [&](int t) {
    double acc = 0;
    for (long r = split_begin(rows, T, t); r < split_begin(rows, T, t + 1); ++r)
      for (int c = 0; c < d; ++c) {
        const double e = X[r * d + c] - s.mean[c];
        acc += e * e;
      }
    tv[t] = acc;
  });
  for (int t = 0; t < T; ++t) s.total_variance += tv[t];
  return s;
}

[[noreturn]] void fail_degenerate_batch(double total_variance) {
  if (total_variance > 0.0)
    fail("ERR_DEGENERATE_BATCH",
         "the batch's total variance (" + std::to_string(total_variance) + ") is too small for the FVU loss in "
         "float32 (inputs of scale ~1e-20): rescale the inputs (a normalization or a constant factor) or use loss 'mse'");
  fail("ERR_DEGENERATE_BATCH",
       "FVU is undefined for a batch whose rows are all identical (e.g. a single row): use a batch of "
       "distinct rows or loss 'mse'");
}

// What a step needs finite (fvu is only a diagnostic under loss 'mse', NaN for a batch without variance).
bool finite_stats(const StepStats& st) {
  return std::isfinite(st.loss) && std::isfinite(st.mse) && std::isfinite(st.aux_loss) && std::isfinite(st.pair_loss) &&
         std::isfinite(st.grad_norm);
}

// CMSAE_PROFILE=1 prints the time of each phase of forward_backward to stderr.
struct PhaseTimer {
  bool on = enabled();
  static bool enabled() {
    static const bool on = std::getenv("CMSAE_PROFILE") != nullptr;
    return on;
  }
  std::chrono::steady_clock::time_point last = std::chrono::steady_clock::now();
  void mark(const char* phase) {
    if (!on) return;
    auto now = std::chrono::steady_clock::now();
    std::fprintf(stderr, "%s %.2fms  ", phase, std::chrono::duration<double, std::milli>(now - last).count());
    last = now;
  }
  void end() {
    if (on) std::fprintf(stderr, "\n");
  }
};

}  // namespace

SaeModel::SaeModel(const SaeConfig& cfg) : cfg_(cfg) {
  const size_t md = static_cast<size_t>(cfg.m) * cfg.d;
  // weights (2), AdamW moments (4), gradient rows (2) and the packed encoder (1), float32 each
  require_memory(9.0 * 4.0 * static_cast<double>(md), "an SAE with d = " + std::to_string(cfg.d) + ", m = " +
                                                          std::to_string(cfg.m));
  W_enc_.assign(md, 0.f);
  W_dec_.assign(md, 0.f);
  b_enc_.assign(cfg.m, 0.f);
  b_dec_.assign(cfg.d, 0.f);
  const size_t sizes[4] = {md, static_cast<size_t>(cfg.m), md, static_cast<size_t>(cfg.d)};
  for (int p = 0; p < 4; ++p)
    for (int q = 0; q < 2; ++q) adam_[p][q].assign(sizes[p], 0.f);
  fires_.assign(cfg.m, 0.0);
  since_.assign(cfg.m, 0);
  if (cfg.cuda) set_device(true, cfg.precision);
}

// ---- CUDA backend: the device copy and the host mirror ---------------------------------------------------

void SaeModel::set_device(bool cuda, DevicePrecision precision) {
  cfg_.cuda = cuda;
  cfg_.precision = precision;
  if (!cuda) {
    if (dev_) {
      view_host();
      grads();  // keep the last gradients and codes readable on the CPU engine
      last_codes();
      dev_.reset();
    }
    return;
  }
  if (dev_) {
    dev_->set_precision(precision);
    return;
  }
  DeviceSaeFactory make = device_sae_factory();
  if (!make)
    fail("ERR_CUDA_UNAVAILABLE", "this build of crossmodal-sae has no CUDA backend (it was built without nvcc): use device 'cpu' or 'auto'");
  require(cfg_.activation == Activation::TopK, "ERR_ARG", "the CUDA backend runs activation 'topk' only (BatchTopK is CPU-only for now): use device 'cpu'");
  require(!(cfg_.aux_coef > 0.f), "ERR_ARG", "the CUDA backend has no AuxK yet (auxCoef must be 0): use device 'cpu'");
  dev_ = make(cfg_.d, cfg_.m, cfg_.k, precision);
  device_stale_ = true;
  host_stale_ = stats_stale_ = grads_stale_ = codes_stale_ = false;
  has_grads_ = false;
}

void SaeModel::view_host() const {
  if (!dev_) return;
  SaeModel* self = const_cast<SaeModel*>(this);
  if (host_stale_) {
    dev_->download_params(self->W_enc_.data(), self->b_enc_.data(), self->W_dec_.data(), self->b_dec_.data());
    float* const mo[4][2] = {{self->adam_[0][0].data(), self->adam_[0][1].data()}, {self->adam_[1][0].data(), self->adam_[1][1].data()},
                             {self->adam_[2][0].data(), self->adam_[2][1].data()}, {self->adam_[3][0].data(), self->adam_[3][1].data()}};
    dev_->download_moments(mo);
    packed_valid_ = false;
    host_stale_ = false;
  }
  if (stats_stale_) {
    dev_->download_latent_stats(self->fires_.data(), self->since_.data());
    stats_stale_ = false;
  }
}

void SaeModel::touch_host() {
  if (!dev_) return;
  view_host();
  device_stale_ = true;
}

void SaeModel::sync_device() {
  if (!dev_ || !device_stale_) return;
  dev_->upload_params(W_enc_.data(), b_enc_.data(), W_dec_.data(), b_dec_.data());
  const float* const mo[4][2] = {{adam_[0][0].data(), adam_[0][1].data()}, {adam_[1][0].data(), adam_[1][1].data()},
                                 {adam_[2][0].data(), adam_[2][1].data()}, {adam_[3][0].data(), adam_[3][1].data()}};
  dev_->upload_moments(mo);
  dev_->upload_latent_stats(fires_.data(), since_.data());
  device_stale_ = false;
}

const SparseGrads& SaeModel::grads() const {
  if (dev_ && grads_stale_) {
    const int d = cfg_.d, m = cfg_.m;
    grads_.resize(d, m);
    grads_.touched.resize(m);
    for (int j = 0; j < m; ++j) {
      grads_.touched[j] = j;
      grads_.slot[j] = j;
    }
    dev_->download_grads(grads_.g_enc.data(), grads_.g_benc.data(), grads_.g_dec.data(), grads_.g_bdec.data());
    grads_stale_ = false;
  }
  return grads_;
}

const CodesBuffer& SaeModel::last_codes() const {
  if (dev_ && codes_stale_) {
    dev_->download_codes(codes_.idx.data(), codes_.val.data());
    codes_stale_ = false;
  }
  return codes_;
}

StepStats SaeModel::device_forward_pass(const float* x, const float* y, long rows, const float* extra_dval,
                                        const ResidentBatch* resident) {
  const int d = cfg_.d, m = cfg_.m, k = cfg_.k;
  require(cfg_.activation == Activation::TopK && !(cfg_.aux_coef > 0.f), "ERR_ARG",
          "the CUDA backend runs activation 'topk' without AuxK: use device 'cpu' for these options");
  const bool paired = resident ? resident->y != nullptr : y != nullptr;
  const int n_seg = paired ? 2 : 1;
  const long R = rows * n_seg;
  const double w = (paired && cfg_.paired_mean) ? 0.5 : 1.0;
  if (b_dec_mean_pending_) {
    std::vector<float> staged;
    if (resident) {  // the first step's batch, gathered on the device and read back once
      sync_device();
      dev_->stage_rows(*resident->x, resident->y, resident->idx, rows);
      staged.resize(static_cast<size_t>(R) * d);
      dev_->download_staged(staged.data(), static_cast<long>(staged.size()));
    }
    auto row_of = [&](long r) { return resident ? staged.data() + r * d : (r < rows ? x + r * d : y + (r - rows) * d); };
    // A degenerate FVU batch must leave everything unchanged (the CPU engine checks before the mean too).
    if (cfg_.loss == LossKind::Fvu)
      for (int sgm = 0; sgm < n_seg; ++sgm) {
        const double tv = column_stats(row_of(sgm * rows), rows, d).total_variance;
        if (fvu_degenerate(tv, w)) fail_degenerate_batch(tv);
      }
    touch_host();
    pending_.b_dec_before = b_dec_;
    pending_.b_dec_mean_applied = true;
    for (int c = 0; c < d; ++c) {
      double s = 0;
      for (long r = 0; r < R; ++r) s += row_of(r)[c];
      b_dec_[c] = static_cast<float>(s / R);
    }
    b_dec_mean_pending_ = false;
  }
  sync_device();
  const bool fvu_loss = cfg_.loss == LossKind::Fvu;
  const long long window = std::min<long long>(cfg_.dead_window, seen_ + R);  // dead_fraction()'s window after this batch
  const DeviceForward f = resident ? dev_->forward_rows(*resident->x, resident->y, resident->idx, rows, w, fvu_loss, window)
                                   : dev_->forward(x, y, rows, w, fvu_loss, window);
  if (f.degenerate) {
    discard_step();
    fail_degenerate_batch(std::min(f.total_variance[0], n_seg > 1 ? f.total_variance[1] : f.total_variance[0]));
  }
  StepStats st;
  st.rows = R;
  for (int s = 0; s < n_seg; ++s) {
    const double fvu = f.sse[s] / f.total_variance[s];
    const double mse = f.sse[s] / (static_cast<double>(rows) * d);
    st.fvu += fvu / n_seg;
    st.mse += mse / n_seg;
    st.loss += w * (cfg_.loss == LossKind::Fvu ? fvu : mse);
  }
  codes_.rows = R;
  codes_.k = k;
  codes_.idx.resize(static_cast<size_t>(R) * k);
  codes_.val.resize(static_cast<size_t>(R) * k);
  codes_stale_ = true;
  if (paired && cfg_.pair_loss != PairLoss::None && cfg_.pair_loss_weight > 0.f) {
    last_codes();  // the code-level losses run on the host over the [R, k] codes
    std::vector<float> delta(static_cast<size_t>(R) * k, 0.f);
    st.pair_loss = pair_code_loss(cfg_.pair_loss, codes_.idx.data(), codes_.val.data(), k, rows, m, cfg_.pair_loss_weight, delta.data());
    st.loss += cfg_.pair_loss_weight * st.pair_loss;
    dev_->add_dval(delta.data());
  }
  if (extra_dval) dev_->add_dval(extra_dval);
  pending_.rows = R;
  st.l0 = static_cast<double>(f.active) / R;
  st.dead_fraction = window > 0 && m > 0 ? static_cast<double>(f.dead) / m : 0.0;
  st.grad_norm = std::sqrt(dev_->backward(cfg_.project_decoder_grad));
  grads_stale_ = true;
  require_finite_step(st);
  return st;
}

EncoderView SaeModel::encoder_view() const {
  EncoderView enc{W_enc_.data(), b_enc_.data(), b_dec_.data(), cfg_.d, cfg_.m};
  const int nr = kernels().nr;
  const long panels = (cfg_.m + nr - 1) / nr;
  std::lock_guard<std::mutex> lock(pack_mutex_);
  if (!packed_valid_ || packed_nr_ != nr) {
    packed_W_.reset(static_cast<size_t>(panels) * nr * cfg_.d);
    packed_bias_.reset(static_cast<size_t>(panels) * nr);
    const int T = static_cast<int>(std::max<long>(1, std::min<long>(num_threads(), panels)));
    parallel_for(T, [&](int t) {
      const long p0 = split_begin(panels, T, t), p1 = split_begin(panels, T, t + 1);
      pack_encoder_panels(enc, p0, p1, nr, packed_W_.data() + p0 * nr * cfg_.d, packed_bias_.data() + p0 * nr);
    });
    packed_nr_ = nr;
    packed_valid_ = true;
  }
  enc.packed_W = packed_W_.data();
  enc.packed_bias = packed_bias_.data();
  enc.packed_nr = packed_nr_;
  return enc;
}

void SaeModel::init(uint64_t seed) {
  touch_host();
  packed_valid_ = false;
  bounds_known_ = false;
  SplitMix64 rng{seed};
  const float bound = 1.0f / std::sqrt(static_cast<float>(cfg_.d));
  for (float& w : W_enc_) w = (2.f * rng.uniform01() - 1.f) * bound;
  std::fill(b_enc_.begin(), b_enc_.end(), 0.f);
  std::copy(W_enc_.begin(), W_enc_.end(), W_dec_.begin());
  renormalize_decoder();
  std::fill(b_dec_.begin(), b_dec_.end(), 0.f);
}

void SaeModel::renormalize_decoder() {
  touch_host();
  bounds_known_ = false;
  const SaeKernels& K = kernels();
  const int d = cfg_.d, m = cfg_.m;
  const int T = std::max(1, std::min(num_threads(), m / 256 + 1));
  parallel_for(T, [&](int t) {
    for (long j = split_begin(m, T, t); j < split_begin(m, T, t + 1); ++j) {
      float* w = W_dec_.data() + j * d;
      const float inv = 1.0f / (static_cast<float>(std::sqrt(K.sumsq(w, d))) + cfg_.decoder_eps);
      for (int c = 0; c < d; ++c) w[c] *= inv;
    }
  });
}

int SaeModel::capacity() const {
  if (cfg_.activation == Activation::TopK) return cfg_.k;
  const int cap = cfg_.batch_capacity > 0 ? cfg_.batch_capacity : 4 * cfg_.k;
  return std::min(std::max(cap, cfg_.k), cfg_.m);
}

void SaeModel::encode(const float* x, long rows, int32_t* idx, float* val) const {
  if (dev_) {
    const_cast<SaeModel*>(this)->sync_device();
    dev_->encode(x, rows, cfg_.k, idx, val);
  } else {
    const EncoderView enc = encoder_view();
    float floor = 0.f;
    if (cfg_.activation == Activation::BatchTopK && theta_ready_) floor = std::max(0.f, static_cast<float>(theta_));
    topk_encode(enc, x, rows, capacity(), floor, idx, val);
  }
  check_output_finite(val, rows, capacity(), "encoding");
}

void SaeModel::decode(const int32_t* idx, const float* val, long rows, int k, float* out) const {
  if (dev_) {
    const_cast<SaeModel*>(this)->sync_device();
    dev_->decode(idx, val, rows, k, out);
  } else {
    sparse_decode(W_dec_.data(), b_dec_.data(), cfg_.d, idx, val, rows, k, out);
  }
  check_output_finite(out, rows, cfg_.d, "decoding");
}

std::vector<float>& SaeModel::adam_state(int param, int moment) {
  touch_host();
  bounds_known_ = false;
  return adam_[param][moment];
}

double SaeModel::dead_fraction() const {
  if (dev_ && stats_stale_) {
    SaeModel* self = const_cast<SaeModel*>(this);
    dev_->download_latent_stats(self->fires_.data(), self->since_.data());
    stats_stale_ = false;
  }
  const long long window = std::min<long long>(cfg_.dead_window, seen_);
  if (window <= 0 || cfg_.m == 0) return 0.0;
  long long dead = 0;
  for (long long s : since_) dead += (s >= window);
  return static_cast<double>(dead) / cfg_.m;
}

// BatchTopK: keep the R*k largest positive pre-activations of the whole batch (ties: row, then
// latent order). Per-row candidate lists of `capacity()` are exact unless a row fills its list above
// the cut; such rows are recomputed with capacity m.
void SaeModel::batch_topk_select(const float* X, long R) {
  const int m = cfg_.m, d = cfg_.d;
  int cap = capacity();
  const EncoderView enc = encoder_view();
  std::vector<int32_t> ci(static_cast<size_t>(R) * cap);
  std::vector<float> cv(static_cast<size_t>(R) * cap);
  topk_encode(enc, X, R, cap, 0.f, ci.data(), cv.data());
  std::vector<std::vector<Candidate>> rows(R);
  for (long r = 0; r < R; ++r)
    for (int s = 0; s < cap; ++s)
      if (cv[r * cap + s] > 0.f) rows[r].push_back({cv[r * cap + s], ci[r * cap + s]});

  const long long target = static_cast<long long>(R) * cfg_.k;
  auto cut_value = [&]() -> float {
    std::vector<float> all;
    for (auto& row : rows)
      for (auto& c : row) all.push_back(c.value);
    if (static_cast<long long>(all.size()) <= target) return 0.f;  // keep every positive value
    std::nth_element(all.begin(), all.begin() + (target - 1), all.end(), std::greater<float>());
    return all[target - 1];
  };
  float tau = cut_value();
  if (cap < m) {
    std::vector<long> saturated;
    for (long r = 0; r < R; ++r)
      if (static_cast<int>(rows[r].size()) == cap && rows[r].back().value >= tau) saturated.push_back(r);
    if (!saturated.empty()) {
      std::vector<float> xs(saturated.size() * d);
      for (size_t i = 0; i < saturated.size(); ++i)
        std::memcpy(xs.data() + i * d, X + saturated[i] * d, sizeof(float) * d);
      std::vector<int32_t> fi(saturated.size() * m);
      std::vector<float> fv(saturated.size() * m);
      topk_encode(enc, xs.data(), static_cast<long>(saturated.size()), m, 0.f, fi.data(), fv.data());
      for (size_t i = 0; i < saturated.size(); ++i) {
        auto& row = rows[saturated[i]];
        row.clear();
        for (int s = 0; s < m && fv[i * m + s] > 0.f; ++s) row.push_back({fv[i * m + s], fi[i * m + s]});
      }
      tau = cut_value();
    }
  }
  // Keep v > tau, then v == tau in row order until the target count.
  long long kept = 0;
  for (auto& row : rows)
    for (auto& c : row) kept += (c.value > tau);
  long long tie_budget = target - kept;
  int k_out = 1;
  float min_kept = 0.f;
  bool any = false;
  for (auto& row : rows) {
    std::vector<Candidate> keep;
    for (auto& c : row) {
      bool take = c.value > tau || (c.value == tau && tau > 0.f && tie_budget > 0);
      if (c.value == tau && take && !(c.value > tau)) --tie_budget;
      if (take) {
        keep.push_back(c);
        min_kept = any ? std::min(min_kept, c.value) : c.value;
        any = true;
      }
    }
    row.swap(keep);
    k_out = std::max<int>(k_out, static_cast<int>(row.size()));
  }
  codes_.rows = R;
  codes_.k = k_out;
  codes_.idx.resize(static_cast<size_t>(R) * k_out);
  codes_.val.resize(static_cast<size_t>(R) * k_out);
  for (long r = 0; r < R; ++r) finalize_row(rows[r], k_out, m, codes_.idx.data() + r * k_out, codes_.val.data() + r * k_out);
  if (any) {
    const double mom = cfg_.threshold_momentum;
    theta_ = theta_ready_ ? mom * theta_ + (1.0 - mom) * min_kept : min_kept;
    theta_ready_ = true;
  }
}

StepStats SaeModel::cpu_forward_pass(const float* x, const float* y, long rows, const float* extra_dval) {
  const int d = cfg_.d, m = cfg_.m;
  PhaseTimer timer;
  const int n_seg = y ? 2 : 1;
  const long R = rows * n_seg;
  const float* X = x;
  if (y) {
    X_.resize(static_cast<size_t>(R) * d);
    std::memcpy(X_.data(), x, sizeof(float) * rows * d);
    std::memcpy(X_.data() + static_cast<size_t>(rows) * d, y, sizeof(float) * rows * d);
    X = X_.data();
  }
  // Validate before touching any state.
  const double w = (y && cfg_.paired_mean) ? 0.5 : 1.0;
  std::vector<ColumnStats> seg_stats;
  for (int s = 0; s < n_seg; ++s) {
    seg_stats.push_back(column_stats(X + s * rows * d, rows, d));
    if (cfg_.loss == LossKind::Fvu && fvu_degenerate(seg_stats.back().total_variance, w))
      fail_degenerate_batch(seg_stats.back().total_variance);
  }
  timer.mark("stats");
  if (b_dec_mean_pending_) {
    pending_.b_dec_before = b_dec_;
    pending_.b_dec_mean_applied = true;
    for (int c = 0; c < d; ++c) {
      double s = 0;
      for (long r = 0; r < R; ++r) s += X[r * d + c];
      b_dec_[c] = static_cast<float>(s / R);
    }
    b_dec_mean_pending_ = false;
  }

  // Dead latents for AuxK.
  const bool aux_on = cfg_.aux_coef > 0.f;
  std::vector<uint8_t> dead;
  long long n_dead = 0;
  if (aux_on) {
    dead.assign(m, 0);
    for (int j = 0; j < m; ++j) {
      dead[j] = since_[j] >= cfg_.dead_window;
      n_dead += dead[j];
    }
  }
  const int k_aux_cfg = cfg_.k_aux > 0 ? cfg_.k_aux : std::max(1, d / 2);
  const int k_aux = aux_on && n_dead > 0 ? static_cast<int>(std::min<long long>(k_aux_cfg, n_dead)) : 0;
  const double aux_scale = k_aux > 0 ? std::min(1.0, static_cast<double>(n_dead) / k_aux_cfg) : 0.0;

  // Encode.
  const EncoderView enc = encoder_view();
  AuxSelect aux_sel{};
  if (k_aux > 0) {
    aux_codes_.rows = R;
    aux_codes_.k = k_aux;
    aux_codes_.idx.resize(static_cast<size_t>(R) * k_aux);
    aux_codes_.val.resize(static_cast<size_t>(R) * k_aux);
    aux_sel = AuxSelect{dead.data(), k_aux, aux_codes_.idx.data(), aux_codes_.val.data()};
  }
  if (cfg_.activation == Activation::TopK) {
    codes_.rows = R;
    codes_.k = cfg_.k;
    codes_.idx.resize(static_cast<size_t>(R) * cfg_.k);
    codes_.val.resize(static_cast<size_t>(R) * cfg_.k);
    topk_encode(enc, X, R, cfg_.k, 0.f, codes_.idx.data(), codes_.val.data(), k_aux > 0 ? &aux_sel : nullptr);
  } else {
    if (k_aux > 0) {  // aux candidates come from a separate pass
      std::vector<int32_t> tmp_i(static_cast<size_t>(R));
      std::vector<float> tmp_v(static_cast<size_t>(R));
      topk_encode(enc, X, R, 1, 0.f, tmp_i.data(), tmp_v.data(), &aux_sel);
    }
    batch_topk_select(X, R);
  }
  timer.mark("encode");
  const int kc = codes_.k;

  // Decode, loss, dL/dx_hat and dL/dval in one pass over rows.
  xhat_.resize(static_cast<size_t>(R) * d);
  G_.resize(static_cast<size_t>(R) * d);
  dval_.resize(static_cast<size_t>(R) * kc);
  StepStats st;
  st.rows = R;
  std::vector<float> aux_hat;
  if (k_aux > 0) {
    aux_hat.resize(static_cast<size_t>(R) * d);
    sparse_decode(W_dec_.data(), nullptr, d, aux_codes_.idx.data(), aux_codes_.val.data(), R, k_aux, aux_hat.data());
    G_aux_.assign(static_cast<size_t>(R) * d, 0.f);
  }
  for (int s = 0; s < n_seg; ++s) {
    const long r0 = s * rows;
    const double denom = cfg_.loss == LossKind::Fvu ? seg_stats[s].total_variance : static_cast<double>(rows) * d;
    const float gscale = loss_gradient_scale(w, denom);
    const double sse = decode_with_gradient(W_dec_.data(), b_dec_.data(), d, codes_.idx.data(), codes_.val.data(), kc, X,
                                            r0, rows, gscale, xhat_.data(), G_.data(), dval_.data());
    const double fvu = sse / seg_stats[s].total_variance;
    const double mse = sse / (static_cast<double>(rows) * d);
    timer.mark("decode+loss");
    st.fvu += fvu / n_seg;
    st.mse += mse / n_seg;
    st.loss += w * (cfg_.loss == LossKind::Fvu ? fvu : mse);
    if (k_aux > 0) {
      // e = x - x_hat (a constant for AuxK); aux = coef*scale*||e_hat - e||^2 / sum (e - mean e)^2
      std::vector<double> emean(d, 0.0);
      for (long r = r0; r < r0 + rows; ++r)
        for (int c = 0; c < d; ++c) emean[c] += X[r * d + c] - xhat_[r * d + c];
      for (int c = 0; c < d; ++c) emean[c] /= rows;
      double evar = 0, aerr = 0;
      for (long r = r0; r < r0 + rows; ++r)
        for (int c = 0; c < d; ++c) {
          const double e = static_cast<double>(X[r * d + c]) - xhat_[r * d + c];
          evar += (e - emean[c]) * (e - emean[c]);
          const double a = aux_hat[r * d + c] - e;
          aerr += a * a;
        }
      if (evar > 0) {
        const double coef = cfg_.aux_coef * aux_scale;
        st.aux_loss += w * coef * aerr / evar;
        const float ascale = static_cast<float>(w * coef * 2.0 / evar);
        for (long r = r0; r < r0 + rows; ++r)
          for (int c = 0; c < d; ++c)
            G_aux_[r * d + c] = ascale * (aux_hat[r * d + c] - (X[r * d + c] - xhat_[r * d + c]));
      }
    }
  }
  st.loss += st.aux_loss;
  if (y && cfg_.pair_loss != PairLoss::None && cfg_.pair_loss_weight > 0.f) {
    st.pair_loss = pair_code_loss(cfg_.pair_loss, codes_.idx.data(), codes_.val.data(), kc, rows, m,
                                  cfg_.pair_loss_weight, dval_.data());
    st.loss += cfg_.pair_loss_weight * st.pair_loss;
  }
  timer.mark("aux");

  // Latent statistics of the batch (committed by commit_step once the step has succeeded).
  long long active = 0;
  pending_.rows = R;
  pending_.count.assign(m, 0);
  for (size_t p = 0; p < codes_.val.size(); ++p)
    if (codes_.val[p] > 0.f) {
      ++active;
      ++pending_.count[codes_.idx[p]];
    }
  st.l0 = static_cast<double>(active) / R;

  // Backward.
  BackwardInput bin{W_enc_.data(), W_dec_.data(), b_dec_.data(), d, m, X, R,
                    codes_.idx.data(), codes_.val.data(), kc, G_.data(), dval_.data(), extra_dval};
  if (k_aux > 0) {
    bin.aux_idx = aux_codes_.idx.data();
    bin.aux_val = aux_codes_.val.data();
    bin.k_aux = k_aux;
    bin.G_aux = G_aux_.data();
  }
  timer.mark("latent-stats");
  sparse_backward(bin, grads_);
  timer.mark("backward");
  if (cfg_.project_decoder_grad) project_decoder_grads(W_dec_.data(), grads_);
  timer.mark("project");
  st.grad_norm = std::sqrt(grads_.sum_squares());
  timer.mark("norm");
  timer.end();
  require_finite_step(st);
  return st;
}

StepStats SaeModel::forward_pass(const float* x, const float* y, long rows, const float* extra_dval, const ResidentBatch* resident) {
  require(rows > 0, "ERR_SHAPE", "empty batch: give at least one row");
  require(extra_dval == nullptr || cfg_.activation == Activation::TopK, "ERR_ARG",
          "code-level gradients need fixed-k codes (activation 'topk')");
  pending_.rows = 0;
  pending_.b_dec_mean_applied = false;
  pending_.theta = theta_;
  pending_.theta_ready = theta_ready_;
  has_grads_ = false;
  if (dev_) return device_forward_pass(x, y, rows, extra_dval, resident);
  return cpu_forward_pass(x, y, rows, extra_dval);
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
    if (dev_) touch_host();
    b_dec_ = pending_.b_dec_before;
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
  if (dev_) {
    dev_->commit_latent_stats();
    stats_stale_ = true;
    last_dead_fraction_ = st.dead_fraction;
    return;
  }
  const int32_t* count = pending_.count.data();
  for (int j = 0; j < cfg_.m; ++j) {
    fires_[j] += count[j];
    since_[j] = count[j] ? 0 : since_[j] + R;
  }
  st.dead_fraction = dead_fraction();
}

StepStats SaeModel::forward_backward(const float* x, const float* y, long rows, const float* extra_dval) {
  StepStats st = forward_pass(x, y, rows, extra_dval, nullptr);
  commit_step(st);
  return st;
}

}  // namespace cmsae
