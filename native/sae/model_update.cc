// The optimizer half of a training step: global-norm clipping, AdamW (kernels.h formula) and decoder row
// renormalization, guarded against divergence. The a priori bounds of update_guard.h prove most updates
// overflow-free at no cost; the rest run on a snapshot that is restored (ERR_DIVERGED) if any value is not finite.
#include <algorithm>
#include <cmath>
#include <mutex>
#include <string>
#include <utility>

#include "../common/errors.h"
#include "../common/thread_pool.h"
#include "kernels.h"
#include "model.h"

namespace cmsae {
namespace {

[[noreturn]] void fail_update_diverged(float lr, long long t) {
  fail("ERR_DIVERGED", "the AdamW update of step " + std::to_string(t) + " (lr " + std::to_string(lr) +
                           ") would make a parameter or an optimizer moment non-finite; the model was left as it was. "
                           "Lower the learning rate or the weight decay, or keep gradient clipping on (maxGradNorm)");
}

}  // namespace

bool SaeModel::scan_all_bounds(ArrayBounds out[4]) const {
  view_host();
  const std::vector<float>* params[4] = {&W_enc_, &b_enc_, &W_dec_, &b_dec_};
  bool ok = true;
  for (int q = 0; q < 4; ++q)
    ok = scan_bounds(params[q]->data(), adam_[q][0].data(), adam_[q][1].data(), params[q]->size(), &out[q]) && ok;
  return ok;
}

void SaeModel::apply_update(float lr, float grad_scale) {
  const long long t = t_ + 1;
  const double bc1 = 1.0 - std::pow(static_cast<double>(cfg_.beta1), static_cast<double>(t));
  const double bc2 = 1.0 - std::pow(static_cast<double>(cfg_.beta2), static_cast<double>(t));
  auto args_for = [&](bool decay) {
    AdamWArgs a;
    a.beta1 = cfg_.beta1;
    a.beta2 = cfg_.beta2;
    a.eps = cfg_.eps;
    a.decay_factor = decay ? 1.f - lr * cfg_.weight_decay : 1.f;
    a.step_size = static_cast<float>(lr / bc1);
    a.inv_sqrt_bc2 = static_cast<float>(1.0 / std::sqrt(bc2));
    a.grad_scale = grad_scale;
    return a;
  };
  const AdamWArgs args[4] = {args_for(cfg_.decay_W_enc), args_for(cfg_.decay_b_enc), args_for(cfg_.decay_W_dec),
                             args_for(cfg_.decay_b_dec)};
  // Every |g_i * scale| <= ||g|| * scale (up to the rounding of the product, which the bounds' margin covers).
  const double G = last_grad_norm_ * static_cast<double>(grad_scale) * (1.0 + 1e-6);
  auto predict = [&](ArrayBounds next[4]) {
    bool ok = true;
    for (int q = 0; q < 4; ++q)
      ok = predict_update(bounds_[q], args[q], G, q == 2 && cfg_.normalize_decoder ? cfg_.d : 0, &next[q]) && ok;
    return ok;
  };
  ArrayBounds next[4];
  bool safe = bounds_known_ && predict(next);
  if (!safe) {  // unknown or loose bounds: take the exact ones and try again
    bounds_known_ = scan_all_bounds(bounds_);
    safe = bounds_known_ && predict(next);
  }
  if (safe) {
    run_update(args);
    t_ = t;
    std::copy(next, next + 4, bounds_);
    return;
  }
  guarded_update(args, lr);
  t_ = t;
}

void SaeModel::guarded_update(const AdamWArgs args[4], float lr) {
  const long long t = t_ + 1;
  std::vector<float>* params[4] = {&W_enc_, &b_enc_, &W_dec_, &b_dec_};
  if (dev_) {
    // The host mirror is the snapshot: bring it up to date, update on the device, read the result back.
    sync_device();
    view_host();
    run_update(args);
    host_stale_ = false;  // run_update marked it; the mirror still holds the state before the update
    std::vector<float> p[4], mo[4][2];
    float* mo_ptr[4][2];
    for (int q = 0; q < 4; ++q) {
      p[q].resize(params[q]->size());
      for (int r = 0; r < 2; ++r) {
        mo[q][r].resize(params[q]->size());
        mo_ptr[q][r] = mo[q][r].data();
      }
    }
    dev_->download_params(p[0].data(), p[1].data(), p[2].data(), p[3].data());
    dev_->download_moments(mo_ptr);
    ArrayBounds b[4];
    bool ok = true;
    for (int q = 0; q < 4; ++q) ok = scan_bounds(p[q].data(), mo[q][0].data(), mo[q][1].data(), p[q].size(), &b[q]) && ok;
    if (!ok) {
      device_stale_ = true;  // the next device use uploads the snapshot again
      fail_update_diverged(lr, t);
    }
    for (int q = 0; q < 4; ++q) {
      params[q]->swap(p[q]);
      for (int r = 0; r < 2; ++r) adam_[q][r].swap(mo[q][r]);
    }
    packed_valid_ = false;
    std::copy(b, b + 4, bounds_);
    bounds_known_ = true;
    ++checked_updates_;
    return;
  }
  std::vector<float> saved[4], saved_mo[4][2];
  for (int q = 0; q < 4; ++q) {
    saved[q] = *params[q];
    for (int r = 0; r < 2; ++r) saved_mo[q][r] = adam_[q][r];
  }
  run_update(args);
  ArrayBounds b[4];
  if (!scan_all_bounds(b)) {
    for (int q = 0; q < 4; ++q) {
      params[q]->swap(saved[q]);
      for (int r = 0; r < 2; ++r) adam_[q][r].swap(saved_mo[q][r]);
    }
    packed_valid_ = false;
    fail_update_diverged(lr, t);
  }
  std::copy(b, b + 4, bounds_);
  bounds_known_ = true;
  ++checked_updates_;
}

void SaeModel::run_update(const AdamWArgs args[4]) {
  const SaeKernels& K = kernels();
  const int d = cfg_.d, m = cfg_.m;
  const AdamWArgs &a_wenc = args[0], &a_benc = args[1], &a_wdec = args[2], &a_bdec = args[3];
  if (dev_) {
    auto dev_args = [](const AdamWArgs& a) {
      return DeviceAdamArgs{a.beta1, a.beta2, a.eps, a.decay_factor, a.step_size, a.inv_sqrt_bc2, a.grad_scale};
    };
    const DeviceAdamArgs dargs[4] = {dev_args(a_wenc), dev_args(a_benc), dev_args(a_wdec), dev_args(a_bdec)};
    sync_device();
    dev_->apply_update(dargs, cfg_.normalize_decoder, cfg_.decoder_eps);
    host_stale_ = true;
    return;
  }
  // b_enc first: the W_enc pass below repacks each encoder panel (weights and bias) right after updating it.
  K.adamw(b_enc_.data(), adam_[1][0].data(), adam_[1][1].data(), grads_.g_benc.data(), m, a_benc);
  K.adamw(b_dec_.data(), adam_[3][0].data(), adam_[3][1].data(), grads_.g_bdec.data(), d, a_bdec);
  const int nr = kernels().nr;
  const long panels = (m + nr - 1) / nr;
  std::lock_guard<std::mutex> lock(pack_mutex_);
  if (packed_nr_ != nr || packed_W_.size() != static_cast<size_t>(panels) * nr * d) {
    packed_W_.reset(static_cast<size_t>(panels) * nr * d);
    packed_bias_.reset(static_cast<size_t>(panels) * nr);
    packed_nr_ = nr;
  }
  const EncoderView raw{W_enc_.data(), b_enc_.data(), b_dec_.data(), d, m};
  const int T = static_cast<int>(std::max<long>(1, std::min<long>(num_threads(), panels / 4 + 1)));
  parallel_for(T, [&](int t) {
    for (long p = split_begin(panels, T, t); p < split_begin(panels, T, t + 1); ++p) {
      for (long j = p * nr; j < std::min<long>(m, (p + 1) * nr); ++j) {
        const int32_t slot = grads_.slot[j];
        const float* ge = slot >= 0 ? grads_.g_enc.data() + static_cast<long>(slot) * d : nullptr;
        const float* gd = slot >= 0 ? grads_.g_dec.data() + static_cast<long>(slot) * d : nullptr;
        K.adamw(W_enc_.data() + j * d, adam_[0][0].data() + j * d, adam_[0][1].data() + j * d, ge, d, a_wenc);
        float* wd = W_dec_.data() + j * d;
        K.adamw(wd, adam_[2][0].data() + j * d, adam_[2][1].data() + j * d, gd, d, a_wdec);
        if (cfg_.normalize_decoder) {
          const float inv = 1.0f / (static_cast<float>(std::sqrt(K.sumsq(wd, d))) + cfg_.decoder_eps);
          for (int c = 0; c < d; ++c) wd[c] *= inv;
        }
      }
      pack_encoder_panels(raw, p, p + 1, nr, packed_W_.data() + p * nr * d, packed_bias_.data() + p * nr);
    }
  });
  packed_valid_ = true;
}

float SaeModel::clip_scale(const StepStats& st) const {
  float scale = 1.f;
  if (cfg_.max_grad_norm > 0.f) {
    const double coef = cfg_.max_grad_norm / (st.grad_norm + 1e-6);
    if (coef < 1.0) scale = static_cast<float>(coef);
  }
  return scale;
}

StepStats SaeModel::update_and_commit(StepStats st, float lr) {
  try {
    apply_update(lr, clip_scale(st));
  } catch (...) {
    discard_step();  // the batch's statistics and first-batch b_dec go too: the step never happened
    throw;
  }
  commit_step(st);
  return st;
}

StepStats SaeModel::step(const float* x, const float* y, long rows, float lr) {
  return update_and_commit(forward_pass(x, y, rows, nullptr, nullptr), lr);
}

StepStats SaeModel::forward_backward_rows(const DeviceRows& x, const DeviceRows* y, const int32_t* idx, long rows,
                                          const float* extra_dval) {
  check_resident_batch(x, y, idx, rows);
  const ResidentBatch batch{&x, y, idx};
  StepStats st = forward_pass(nullptr, nullptr, rows, extra_dval, &batch);
  commit_step(st);
  return st;
}

StepStats SaeModel::step_rows(const DeviceRows& x, const DeviceRows* y, const int32_t* idx, long rows, float lr) {
  check_resident_batch(x, y, idx, rows);
  const ResidentBatch batch{&x, y, idx};
  return update_and_commit(forward_pass(nullptr, nullptr, rows, nullptr, &batch), lr);
}

void SaeModel::check_resident_batch(const DeviceRows& x, const DeviceRows* y, const int32_t* idx, long rows) const {
  require(dev_ != nullptr, "ERR_STATE", "resident rows need an SAE on device 'cuda'");
  require(rows > 0, "ERR_SHAPE", "empty batch: give at least one row");
  require(x.dim() == cfg_.d && (!y || y->dim() == cfg_.d), "ERR_SHAPE",
          "resident rows have " + std::to_string(x.dim()) + " values, the SAE expects " + std::to_string(cfg_.d));
  for (long r = 0; r < rows; ++r)
    if (idx[r] < 0 || idx[r] >= x.rows() || (y && idx[r] >= y->rows()))
      fail("ERR_RANGE", "row index " + std::to_string(idx[r]) + " is outside the " + std::to_string(x.rows()) + " resident rows");
}

}  // namespace cmsae
