// The optimizer half of a training step: global-norm clipping, AdamW (kernels.h formula) and decoder row
// renormalization, guarded against divergence. The a priori bounds of update_guard.h prove most updates
// overflow-free at no cost; the rest run on a snapshot that is restored (ERR_DIVERGED) if any value is not finite.
#include <algorithm>
#include <cmath>
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
  view(kParams | kMoments);
  bool ok = true;
  for (int q = 0; q < 4; ++q)
    ok = scan_bounds(host_.param(q).data(), host_.moments[q][0].data(), host_.moments[q][1].data(), host_.param(q).size(), &out[q]) && ok;
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

// The update on a snapshot: the host copy before the update is kept, and restored (the backend re-learns it) when
// any parameter or moment came out non-finite.
void SaeModel::guarded_update(const AdamWArgs args[4], float lr) {
  const long long t = t_ + 1;
  view(kParams | kMoments);
  std::vector<float> saved[4], saved_mo[4][2];
  for (int q = 0; q < 4; ++q) {
    saved[q] = host_.param(q);
    for (int r = 0; r < 2; ++r) saved_mo[q][r] = host_.moments[q][r];
  }
  run_update(args);
  ArrayBounds b[4];
  if (!scan_all_bounds(b)) {
    for (int q = 0; q < 4; ++q) {
      host_.param(q).swap(saved[q]);
      for (int r = 0; r < 2; ++r) host_.moments[q][r].swap(saved_mo[q][r]);
    }
    edit(kParams | kMoments);
    fail_update_diverged(lr, t);
  }
  std::copy(b, b + 4, bounds_);
  bounds_known_ = true;
  ++checked_updates_;
}

void SaeModel::run_update(const AdamWArgs args[4]) {
  sync();
  backend_->apply_update(args, cfg_.normalize_decoder, cfg_.decoder_eps);
  backend_wrote(kParams | kMoments);
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
  SaeBatch b;
  b.rows = rows;
  b.x = x;
  b.y = y;
  return update_and_commit(forward_pass(b, nullptr), lr);
}

StepStats SaeModel::forward_backward_rows(const DeviceRows& x, const DeviceRows* y, const int32_t* idx, long rows,
                                          const float* extra_dval) {
  StepStats st = forward_pass(resident_batch(x, y, idx, rows), extra_dval);
  commit_step(st);
  return st;
}

StepStats SaeModel::step_rows(const DeviceRows& x, const DeviceRows* y, const int32_t* idx, long rows, float lr) {
  return update_and_commit(forward_pass(resident_batch(x, y, idx, rows), nullptr), lr);
}

SaeBatch SaeModel::resident_batch(const DeviceRows& x, const DeviceRows* y, const int32_t* idx, long rows) const {
  require(on_device(), "ERR_STATE", "resident rows need an SAE on device 'cuda'");
  require(rows > 0, "ERR_SHAPE", "empty batch: give at least one row");
  require(x.dim() == cfg_.d && (!y || y->dim() == cfg_.d), "ERR_SHAPE",
          "resident rows have " + std::to_string(x.dim()) + " values, the SAE expects " + std::to_string(cfg_.d));
  for (long r = 0; r < rows; ++r)
    if (idx[r] < 0 || idx[r] >= x.rows() || (y && idx[r] >= y->rows()))
      fail("ERR_RANGE", "row index " + std::to_string(idx[r]) + " is outside the " + std::to_string(x.rows()) + " resident rows");
  SaeBatch b;
  b.rows = rows;
  b.rx = &x;
  b.ry = y;
  b.idx = idx;
  return b;
}

}  // namespace cmsae
