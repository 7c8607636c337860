#include "sae_wrap.h"
#include "rows_wrap.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "../common/thread_pool.h"
#include "../common/validate.h"
#include "../sae/bf16_encoder.h"
#include "../sae/external_layout.h"
#include "addon_data.h"
#include "args.h"
#include "async.h"

namespace cmsae::binding {
namespace {

Napi::Object stats_object(Napi::Env env, const StepStats& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("loss", s.loss);
  o.Set("fvu", s.fvu);
  o.Set("mse", s.mse);
  o.Set("auxLoss", s.aux_loss);
  o.Set("pairLoss", s.pair_loss);
  o.Set("l0", s.l0);
  o.Set("deadFraction", s.dead_fraction);
  o.Set("gradNorm", s.grad_norm);
  o.Set("rows", static_cast<double>(s.rows));
  return o;
}

std::string str_opt(const Napi::Object& o, const char* key, const std::string& fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsString()) throw_js(o.Env(), "ERR_ARG", std::string("option ") + key + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

// Applies the (already validated by lib/) options object onto cfg; re-checks what memory safety needs.
void apply_options(const Napi::Object& o, SaeConfig& c) {
  Napi::Env env = o.Env();
  const std::string act = str_opt(o, "activation", c.activation == Activation::TopK ? "topk" : "batchtopk");
  if (act == "topk") c.activation = Activation::TopK;
  else if (act == "batchtopk") c.activation = Activation::BatchTopK;
  else throw_js(env, "ERR_ARG", "activation must be 'topk' or 'batchtopk'");
  const std::string loss = str_opt(o, "loss", c.loss == LossKind::Fvu ? "fvu" : "mse");
  if (loss == "fvu") c.loss = LossKind::Fvu;
  else if (loss == "mse") c.loss = LossKind::Mse;
  else throw_js(env, "ERR_ARG", "loss must be 'fvu' or 'mse'");
  const std::string red = str_opt(o, "pairedReduction", c.paired_mean ? "mean" : "sum");
  if (red != "sum" && red != "mean") throw_js(env, "ERR_ARG", "pairedReduction must be 'sum' or 'mean'");
  c.paired_mean = red == "mean";
  c.normalize_decoder = opt_bool(o, "normalizeDecoder", c.normalize_decoder);
  c.project_decoder_grad = opt_bool(o, "projectDecoderGrad", c.project_decoder_grad);
  c.max_grad_norm = static_cast<float>(opt_number(o, "maxGradNorm", c.max_grad_norm));
  c.beta1 = static_cast<float>(opt_number(o, "beta1", c.beta1));
  c.beta2 = static_cast<float>(opt_number(o, "beta2", c.beta2));
  c.eps = static_cast<float>(opt_number(o, "eps", c.eps));
  c.weight_decay = static_cast<float>(opt_number(o, "weightDecay", c.weight_decay));
  Napi::Value dv = o.Get("decay");
  if (dv.IsObject()) {
    Napi::Object dec = dv.As<Napi::Object>();
    c.decay_W_enc = opt_bool(dec, "W_enc", c.decay_W_enc);
    c.decay_b_enc = opt_bool(dec, "b_enc", c.decay_b_enc);
    c.decay_W_dec = opt_bool(dec, "W_dec", c.decay_W_dec);
    c.decay_b_dec = opt_bool(dec, "b_dec", c.decay_b_dec);
  }
  c.decoder_eps = static_cast<float>(opt_number(o, "decoderEps", c.decoder_eps));
  c.k_aux = static_cast<int>(opt_number(o, "kAux", c.k_aux));
  c.aux_coef = static_cast<float>(opt_number(o, "auxCoef", c.aux_coef));
  c.dead_window = static_cast<long long>(opt_number(o, "deadWindow", static_cast<double>(c.dead_window)));
  c.batch_capacity = static_cast<int>(opt_number(o, "batchCapacity", c.batch_capacity));
  c.threshold_momentum = static_cast<float>(opt_number(o, "thresholdMomentum", c.threshold_momentum));
  if (c.k_aux < 0 || c.k_aux > c.m) throw_js(env, "ERR_ARG", "kAux must be in [0, m]");
  if (c.batch_capacity < 0) throw_js(env, "ERR_ARG", "batchCapacity must be >= 0");
  if (c.dead_window < 1) throw_js(env, "ERR_ARG", "deadWindow must be >= 1");
  if (!(c.aux_coef >= 0)) throw_js(env, "ERR_ARG", "auxCoef must be >= 0");
  const std::string pl = str_opt(o, "pairLoss", "none");
  if (pl == "none") c.pair_loss = PairLoss::None;
  else if (pl == "iso") c.pair_loss = PairLoss::Iso;
  else if (pl == "iso-inner") c.pair_loss = PairLoss::IsoInner;
  else if (pl == "group") c.pair_loss = PairLoss::Group;
  else throw_js(env, "ERR_ARG", "pairLoss must be 'none', 'iso', 'iso-inner' or 'group'");
  c.pair_loss_weight = static_cast<float>(opt_number(o, "pairLossWeight", c.pair_loss_weight));
  if (!(c.pair_loss_weight >= 0)) throw_js(env, "ERR_ARG", "pairLossWeight must be >= 0");
  const std::string dev = str_opt(o, "device", c.cuda ? "cuda" : "cpu");
  if (dev != "cpu" && dev != "cuda") throw_js(env, "ERR_ARG", "device must be 'cpu' or 'cuda' (resolve 'auto' first)");
  c.cuda = dev == "cuda";
  const std::string prec = str_opt(o, "precision",
                                   c.precision == DevicePrecision::Tf32 ? "tf32" : c.precision == DevicePrecision::Bf16 ? "bf16" : "fp32");
  if (prec == "tf32") c.precision = DevicePrecision::Tf32;
  else if (prec == "bf16") c.precision = DevicePrecision::Bf16;
  else if (prec == "fp32") c.precision = DevicePrecision::Fp32;
  else throw_js(env, "ERR_ARG", "precision must be 'tf32', 'bf16' or 'fp32'");
}

// Views of the four parameter arrays (W_enc [d, m], b_enc [m], W_dec [m, d], b_dec [d]) from info[0..3].
ExternalParams param_arrays(const Napi::CallbackInfo& info, size_t d, size_t m) {
  Napi::Env env = info.Env();
  return {float32_arg(env, info[0], "W_enc", d * m).Data(), float32_arg(env, info[1], "b_enc", m).Data(),
          float32_arg(env, info[2], "W_dec", d * m).Data(), float32_arg(env, info[3], "b_dec", d).Data()};
}

// Views of the state arrays of a JS object (moments by kMomentNames, fires, since).
ExternalState state_arrays(Napi::Env env, const Napi::Object& o, const SaeModel& m) {
  ExternalState s;
  const SaeModel& cm = m;
  for (int p = 0; p < 4; ++p)
    for (int q = 0; q < 2; ++q) s.moments[p][q] = float32_arg(env, o.Get(kMomentNames[p][q]), kMomentNames[p][q], cm.adam_state(p, q).size()).Data();
  s.fires = float64_arg(env, o.Get("fires"), "fires", m.m()).Data();
  s.since = float64_arg(env, o.Get("since"), "since", m.m()).Data();
  return s;
}

}  // namespace

Napi::Function NativeSae::define(Napi::Env env) {
  return DefineClass(env, "NativeSae",
                     {
                         InstanceMethod("init", &NativeSae::init),
                         InstanceMethod("encode", &NativeSae::encode),
                         InstanceMethod("encodeAsync", &NativeSae::encode_async),
                         InstanceMethod("decode", &NativeSae::decode),
                         InstanceMethod("step", &NativeSae::step),
                         InstanceMethod("stepAsync", &NativeSae::step_async),
                         InstanceMethod("forwardBackward", &NativeSae::forward_backward),
                         InstanceMethod("stepRows", &NativeSae::step_rows),
                         InstanceMethod("stepRowsAsync", &NativeSae::step_rows_async),
                         InstanceMethod("forwardBackwardRows", &NativeSae::forward_backward_rows),
                         InstanceMethod("applyUpdate", &NativeSae::apply_update),
                         InstanceMethod("readGradients", &NativeSae::read_gradients),
                         InstanceMethod("readWeights", &NativeSae::read_weights),
                         InstanceMethod("writeWeights", &NativeSae::write_weights),
                         InstanceMethod("readState", &NativeSae::read_state),
                         InstanceMethod("writeState", &NativeSae::write_state),
                         InstanceMethod("lastCodes", &NativeSae::last_codes),
                         InstanceMethod("status", &NativeSae::status),
                         InstanceMethod("setOptions", &NativeSae::set_options),
                         InstanceMethod("dispose", &NativeSae::dispose),
                     });
}

NativeSae::NativeSae(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeSae>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw_js(env, "ERR_ARG", "NativeSae needs an options object");
  Napi::Object o = info[0].As<Napi::Object>();
  SaeConfig c;
  const long long d = count_arg(env, o.Get("d"), "d", 1);
  const long long m = count_arg(env, o.Get("m"), "m", 1);
  const long long k = count_arg(env, o.Get("k"), "k", 1);
  if (k > m) throw_js(env, "ERR_ARG", "k must be <= m");
  if (d > (1 << 24) || m > (1 << 28) || d * m > (1LL << 33))
    throw_js(env, "ERR_ARG", "d x m is too large for this build (d <= 2^24, m <= 2^28, d*m <= 2^33)");
  c.d = static_cast<int>(d);
  c.m = static_cast<int>(m);
  c.k = static_cast<int>(k);
  apply_options(o, c);
  guarded(env, [&] { model_ = std::make_unique<SaeModel>(c); });
  accounted_bytes_ = external_bytes();
  Napi::MemoryManagement::AdjustExternalMemory(env, static_cast<int64_t>(accounted_bytes_));
}

NativeSae::~NativeSae() = default;

void NativeSae::Finalize(Napi::Env env) {
  if (accounted_bytes_ > 0) Napi::MemoryManagement::AdjustExternalMemory(env, -static_cast<int64_t>(accounted_bytes_));
  accounted_bytes_ = 0;
}

size_t NativeSae::external_bytes() const {
  if (!model_) return 0;
  const size_t md = static_cast<size_t>(model_->m()) * model_->d();
  return md * 4 * (2 /*params*/ + 4 /*moments*/ + 2 /*grad scratch*/);
}

SaeModel& NativeSae::model(const Napi::Env& env, bool allow_busy) {
  if (!model_) throw_js(env, "ERR_DISPOSED", "this SAE was disposed; create or load a new one");
  if (busy_ && !allow_busy)
    throw_js(env, "ERR_BUSY", "an async operation on this SAE is still running; await it before calling again");
  return *model_;
}

Napi::Value NativeSae::init(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SaeModel& m = model(env);
  const double seed = number_arg(env, info[0], "seed");
  const bool mean_init = info.Length() > 1 && info[1].ToBoolean().Value();
  m.init(static_cast<uint64_t>(static_cast<int64_t>(seed)));
  m.set_b_dec_mean_init_pending(mean_init);
  return env.Undefined();
}

namespace {

// encode(x, rows, indicesOut, valuesOut): arguments shared by the sync and async forms.
struct EncodeCall {
  Napi::Float32Array x;
  Napi::Int32Array idx;
  Napi::Float32Array val;
  long long rows;
};

EncodeCall parse_encode(const Napi::CallbackInfo& info, const SaeModel& m) {
  Napi::Env env = info.Env();
  const long long rows = count_arg(env, info[1], "rows", 1);
  const size_t kc = m.capacity();
  return {float32_arg(env, info[0], "x", rows * m.d()), int32_arg(env, info[2], "indices", rows * kc),
          float32_arg(env, info[3], "values", rows * kc), rows};
}

// The encode checks x itself (the certified path while it reads the rows: no separate pass over x); on a NaN or
// +-Inf, check_finite finds the first one and throws ERR_NONFINITE naming its row and column.
void run_encode(const SaeModel& m, const float* x, long long rows, int32_t* idx, float* val) {
  if (m.encode_checking_input(x, rows, idx, val)) return;
  check_finite(x, rows, m.d(), "x");
  fail("ERR_NONFINITE", "x has a non-finite value: remove or repair that row before calling again");
}

// step(x, y | null, rows, lr): arguments shared by the sync and async forms.
struct StepCall {
  Napi::Float32Array x, y;
  bool paired;
  long long rows;
  double lr;
};

StepCall parse_step(const Napi::CallbackInfo& info, const SaeModel& m) {
  Napi::Env env = info.Env();
  StepCall c;
  c.rows = count_arg(env, info[2], "rows", 1);
  c.x = float32_arg(env, info[0], "x", c.rows * m.d());
  c.paired = !info[1].IsNull() && !info[1].IsUndefined();
  if (c.paired) c.y = float32_arg(env, info[1], "y", c.rows * m.d());
  c.lr = number_arg(env, info[3], "lr");
  if (!(c.lr >= 0) || !std::isfinite(c.lr)) throw_js(env, "ERR_ARG", "lr must be a finite number >= 0");
  return c;
}

StepStats run_step(SaeModel& m, const float* x, const float* y, long long rows, double lr) {
  check_finite(x, rows, m.d(), "x");
  if (y) check_finite(y, rows, m.d(), "y");
  return m.step(x, y, rows, static_cast<float>(lr));
}

}  // namespace

Napi::Value NativeSae::encode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SaeModel& m = model(env);
  EncodeCall c = parse_encode(info, m);
  guarded(env, [&] { run_encode(m, c.x.Data(), c.rows, c.idx.Data(), c.val.Data()); });
  return env.Undefined();
}

Napi::Value NativeSae::encode_async(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SaeModel& m = model(env);
  EncodeCall c = parse_encode(info, m);
  const float* xp = c.x.Data();
  int32_t* ip = c.idx.Data();
  float* vp = c.val.Data();
  const long long rows = c.rows;
  SaeModel* mp = &m;
  busy_ = true;
  auto* w = new PromiseWorker(
      env, [mp, xp, rows, ip, vp] { run_encode(*mp, xp, rows, ip, vp); }, nullptr, [this] { busy_ = false; },
      {c.x, c.idx, c.val, Value()});
  w->Queue();
  return w->promise();
}

Napi::Value NativeSae::decode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SaeModel& m = model(env);
  const long long rows = count_arg(env, info[2], "rows", 1);
  const long long k = count_arg(env, info[3], "k", 1);
  Napi::Int32Array idx = int32_arg(env, info[0], "indices", rows * k);
  Napi::Float32Array val = float32_arg(env, info[1], "values", rows * k);
  Napi::Float32Array out = float32_arg(env, info[4], "out", rows * m.d());
  guarded(env, [&] {
    const int32_t* ip = idx.Data();
    for (long long i = 0; i < rows * k; ++i)
      if (ip[i] < 0 || ip[i] >= m.m())
        fail("ERR_RANGE", "indices[" + std::to_string(i) + "] = " + std::to_string(ip[i]) +
                              " is outside [0, m): codes must come from an SAE with the same m");
    check_finite(val.Data(), rows, static_cast<int>(k), "values");
    m.decode(ip, val.Data(), rows, static_cast<int>(k), out.Data());
  });
  return env.Undefined();
}

Napi::Value NativeSae::step(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SaeModel& m = model(env);
  StepCall c = parse_step(info, m);
  StepStats st = guarded(env, [&] { return run_step(m, c.x.Data(), c.paired ? c.y.Data() : nullptr, c.rows, c.lr); });
  return stats_object(env, st);
}

Napi::Value NativeSae::step_async(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SaeModel& m = model(env);
  StepCall c = parse_step(info, m);
  const float* xp = c.x.Data();
  const float* yp = c.paired ? c.y.Data() : nullptr;
  const long long rows = c.rows;
  const double lr = c.lr;
  SaeModel* mp = &m;
  auto result = std::make_shared<StepStats>();
  busy_ = true;
  auto* w = new PromiseWorker(
      env, [mp, xp, yp, rows, lr, result] { *result = run_step(*mp, xp, yp, rows, lr); },
      [result](Napi::Env e) -> Napi::Value { return stats_object(e, *result); }, [this] { busy_ = false; },
      {c.x, c.paired ? Napi::Value(c.y) : env.Undefined(), Value()});
  w->Queue();
  return w->promise();
}

Napi::Value NativeSae::forward_backward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SaeModel& m = model(env);
  const long long rows = count_arg(env, info[2], "rows", 1);
  Napi::Float32Array x = float32_arg(env, info[0], "x", rows * m.d());
  const bool paired = !info[1].IsNull() && !info[1].IsUndefined();
  Napi::Float32Array y = paired ? float32_arg(env, info[1], "y", rows * m.d()) : Napi::Float32Array();
  const bool has_extra = info.Length() > 3 && !info[3].IsNull() && !info[3].IsUndefined();
  const long long total_rows = rows * (paired ? 2 : 1);
  Napi::Float32Array extra =
      has_extra ? float32_arg(env, info[3], "extraDval", total_rows * m.config().k) : Napi::Float32Array();
  StepStats st = guarded(env, [&] {
    check_finite(x.Data(), rows, m.d(), "x");
    if (paired) check_finite(y.Data(), rows, m.d(), "y");
    if (has_extra) check_finite(extra.Data(), total_rows, m.config().k, "extraDval");
    return m.forward_backward(x.Data(), paired ? y.Data() : nullptr, rows, has_extra ? extra.Data() : nullptr);
  });
  return stats_object(env, st);
}

namespace {

// stepRows(xRows, yRows | null, idx, lr) / forwardBackwardRows(xRows, yRows | null, idx, extraDval | null).
struct RowsCall {
  const DeviceRows* x;
  const DeviceRows* y;
  Napi::Int32Array idx;
  long long rows;
};

RowsCall parse_rows(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RowsCall c;
  c.x = &NativeDeviceRows::from(env, info[0], "x");
  c.y = (info[1].IsNull() || info[1].IsUndefined()) ? nullptr : &NativeDeviceRows::from(env, info[1], "pair");
  if (!info[2].IsTypedArray() || info[2].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    throw_js(env, "ERR_DTYPE", "idx must be an Int32Array of resident row positions");
  c.idx = info[2].As<Napi::Int32Array>();
  c.rows = static_cast<long long>(c.idx.ElementLength());
  if (c.rows < 1) throw_js(env, "ERR_SHAPE", "empty batch: give at least one row index");
  return c;
}

}  // namespace

Napi::Value NativeSae::step_rows(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SaeModel& m = model(env);
  RowsCall c = parse_rows(info);
  const double lr = number_arg(env, info[3], "lr");
  if (!(lr >= 0) || !std::isfinite(lr)) throw_js(env, "ERR_ARG", "lr must be a finite number >= 0");
  StepStats st = guarded(env, [&] { return m.step_rows(*c.x, c.y, c.idx.Data(), static_cast<long>(c.rows), static_cast<float>(lr)); });
  return stats_object(env, st);
}

Napi::Value NativeSae::step_rows_async(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SaeModel& m = model(env);
  RowsCall c = parse_rows(info);
  const double lr = number_arg(env, info[3], "lr");
  if (!(lr >= 0) || !std::isfinite(lr)) throw_js(env, "ERR_ARG", "lr must be a finite number >= 0");
  SaeModel* mp = &m;
  const DeviceRows* xp = c.x;
  const DeviceRows* yp = c.y;
  const int32_t* ip = c.idx.Data();
  const long rows = static_cast<long>(c.rows);
  auto result = std::make_shared<StepStats>();
  busy_ = true;
  auto* w = new PromiseWorker(
      env, [mp, xp, yp, ip, rows, lr, result] { *result = mp->step_rows(*xp, yp, ip, rows, static_cast<float>(lr)); },
      [result](Napi::Env e) -> Napi::Value { return stats_object(e, *result); }, [this] { busy_ = false; },
      {info[0], info[1], c.idx, Value()});
  w->Queue();
  return w->promise();
}

Napi::Value NativeSae::forward_backward_rows(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SaeModel& m = model(env);
  RowsCall c = parse_rows(info);
  const long long total_rows = c.rows * (c.y ? 2 : 1);
  const bool has_extra = info.Length() > 3 && !info[3].IsNull() && !info[3].IsUndefined();
  Napi::Float32Array extra =
      has_extra ? float32_arg(env, info[3], "extraDval", total_rows * m.config().k) : Napi::Float32Array();
  StepStats st = guarded(env, [&] {
    if (has_extra) check_finite(extra.Data(), total_rows, m.config().k, "extraDval");
    return m.forward_backward_rows(*c.x, c.y, c.idx.Data(), static_cast<long>(c.rows), has_extra ? extra.Data() : nullptr);
  });
  return stats_object(env, st);
}

Napi::Value NativeSae::apply_update(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SaeModel& m = model(env);
  const double lr = number_arg(env, info[0], "lr");
  const double scale = number_arg(env, info[1], "gradScale");
  if (!(lr >= 0) || !std::isfinite(lr)) throw_js(env, "ERR_ARG", "lr must be a finite number >= 0");
  if (!(scale >= 0) || !std::isfinite(scale)) throw_js(env, "ERR_ARG", "gradScale must be a finite number >= 0");
  if (!m.has_grads()) throw_js(env, "ERR_STATE", "applyUpdate needs gradients: call forwardBackward first");
  guarded(env, [&] { m.apply_update(static_cast<float>(lr), static_cast<float>(scale)); });
  return env.Undefined();
}

// readGradients(W_enc [d,m], b_enc [m], W_dec [m,d], b_dec [d]): dense copies of the last gradients.
Napi::Value NativeSae::read_gradients(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SaeModel& m = model(env);
  const ExternalParams out = param_arrays(info, m.d(), m.m());
  guarded(env, [&] { read_dense_grads(m, out); });
  return env.Undefined();
}

Napi::Value NativeSae::read_weights(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const SaeModel& m = model(env);  // const: reading does not mark the device copy stale
  const ExternalParams out = param_arrays(info, m.d(), m.m());
  guarded(env, [&] { read_params(m, out); });
  return env.Undefined();
}

Napi::Value NativeSae::write_weights(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SaeModel& m = model(env);
  const ExternalParams in = param_arrays(info, m.d(), m.m());
  guarded(env, [&] { write_params(m, in); });
  return env.Undefined();
}

// State arrays: moments (W_enc ones in [d, m] orientation like the weights), fire counts,
// samples since fired, and scalars. readState(obj) fills obj's arrays; writeState(obj, scalars) restores.
Napi::Value NativeSae::read_state(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SaeModel& m = model(env);
  if (!info[0].IsObject()) throw_js(env, "ERR_ARG", "readState needs an object of arrays");
  const ExternalState out = state_arrays(env, info[0].As<Napi::Object>(), m);
  const StateScalars sc = guarded(env, [&] { return cmsae::read_state(static_cast<const SaeModel&>(m), out); });
  Napi::Object scalars = Napi::Object::New(env);
  scalars.Set("step", sc.step);
  scalars.Set("samplesSeen", sc.samples_seen);
  scalars.Set("threshold", sc.threshold);
  scalars.Set("thresholdReady", sc.threshold_ready);
  scalars.Set("bDecMeanInitPending", sc.b_dec_mean_pending);
  return scalars;
}

Napi::Value NativeSae::write_state(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SaeModel& m = model(env);
  if (!info[0].IsObject() || !info[1].IsObject()) throw_js(env, "ERR_ARG", "writeState needs (arrays, scalars)");
  const ExternalState in = state_arrays(env, info[0].As<Napi::Object>(), m);
  Napi::Object o = info[1].As<Napi::Object>();
  StateScalars sc;
  sc.step = opt_number(o, "step", 0);
  sc.samples_seen = opt_number(o, "samplesSeen", 0);
  sc.threshold = opt_number(o, "threshold", 0);
  sc.threshold_ready = opt_bool(o, "thresholdReady", false);
  sc.b_dec_mean_pending = opt_bool(o, "bDecMeanInitPending", false);
  guarded(env, [&] { cmsae::write_state(m, in, sc); });
  return env.Undefined();
}

// lastCodes() -> { rows, k, indices, values } of the last training forward pass.
Napi::Value NativeSae::last_codes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SaeModel& m = model(env);
  const CodesBuffer& c = m.last_codes();
  Napi::Object o = Napi::Object::New(env);
  Napi::Int32Array idx = Napi::Int32Array::New(env, c.idx.size());
  Napi::Float32Array val = Napi::Float32Array::New(env, c.val.size());
  std::memcpy(idx.Data(), c.idx.data(), sizeof(int32_t) * c.idx.size());
  std::memcpy(val.Data(), c.val.data(), sizeof(float) * c.val.size());
  o.Set("rows", static_cast<double>(c.rows));
  o.Set("k", c.k);
  o.Set("indices", idx);
  o.Set("values", val);
  return o;
}

Napi::Value NativeSae::status(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SaeModel& m = model(env, true);
  Napi::Object o = Napi::Object::New(env);
  o.Set("codesK", m.capacity());
  o.Set("step", static_cast<double>(m.step_count()));
  o.Set("samplesSeen", static_cast<double>(m.samples_seen()));
  o.Set("threshold", m.threshold());
  o.Set("thresholdReady", m.threshold_ready());
  // While an async step runs on the device, the last step's value (reading the device stats would race).
  o.Set("deadFraction", busy_ && m.on_device() ? m.last_dead_fraction() : m.dead_fraction());
  o.Set("busy", busy_);
  o.Set("checkedUpdates", static_cast<double>(m.checked_updates()));
  return o;
}

Napi::Value NativeSae::set_options(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SaeModel& m = model(env);
  if (!info[0].IsObject()) throw_js(env, "ERR_ARG", "setOptions needs an options object");
  SaeConfig c = m.config();
  apply_options(info[0].As<Napi::Object>(), c);
  if (c.cuda && (c.activation != Activation::TopK || c.aux_coef > 0.f))
    throw_js(env, "ERR_ARG", "the CUDA backend runs activation 'topk' without AuxK: use device 'cpu' for these options");
  guarded(env, [&] { m.set_device(c.cuda, c.precision); });
  m.mutable_config() = c;
  return env.Undefined();
}

Napi::Value NativeSae::dispose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!model_) return env.Undefined();
  if (busy_) throw_js(env, "ERR_BUSY", "an async operation on this SAE is still running; await it before disposing");
  model_.reset();
  Napi::MemoryManagement::AdjustExternalMemory(env, -static_cast<int64_t>(accounted_bytes_));
  accounted_bytes_ = 0;
  return env.Undefined();
}

// pairCodeLoss(kind, idx, val, k, n, m, scale) -> { loss, dval }: the code-level pair loss of a paired batch
// of codes (rows [0,n) image, [n,2n) text) and scale * its gradient w.r.t. the values (tests, tools).
Napi::Value pair_code_loss_js(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) throw_js(env, "ERR_ARG", "kind must be 'iso', 'iso-inner' or 'group'");
  const std::string kind = info[0].As<Napi::String>().Utf8Value();
  PairLoss pl;
  if (kind == "iso") pl = PairLoss::Iso;
  else if (kind == "iso-inner") pl = PairLoss::IsoInner;
  else if (kind == "group") pl = PairLoss::Group;
  else throw_js(env, "ERR_ARG", "kind must be 'iso', 'iso-inner' or 'group'");
  const int k = static_cast<int>(count_arg(env, info[3], "k", 1));
  const long n = static_cast<long>(count_arg(env, info[4], "n", 1));
  const int m = static_cast<int>(count_arg(env, info[5], "m", 1));
  const double scale = number_arg(env, info[6], "scale");
  Napi::Int32Array idx = int32_arg(env, info[1], "idx", static_cast<size_t>(2 * n * k));
  Napi::Float32Array val = float32_arg(env, info[2], "val", static_cast<size_t>(2 * n * k));
  for (size_t p = 0; p < static_cast<size_t>(2 * n * k); ++p)
    if (idx[p] < 0 || idx[p] >= m) throw_js(env, "ERR_RANGE", "idx has an entry outside [0, m)");
  Napi::Float32Array dval = Napi::Float32Array::New(env, static_cast<size_t>(2 * n * k));
  std::fill(dval.Data(), dval.Data() + 2 * n * k, 0.f);
  const double loss = guarded(env, [&] { return pair_code_loss(pl, idx.Data(), val.Data(), k, n, m, scale, dval.Data()); });
  Napi::Object o = Napi::Object::New(env);
  o.Set("loss", loss);
  o.Set("dval", dval);
  return o;
}

// The BF16 copy of an encoder as the certified encode packs it (a test hook: packer against its reference).
// packBf16(W [m*d], b [m], d, m, impl 'reference' | 'active') -> { Wp, bias, P, Q, C, finite }
Napi::Value pack_bf16_js(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int d = static_cast<int>(count_arg(env, info[2], "d", 1));
  const int m = static_cast<int>(count_arg(env, info[3], "m", 1));
  Napi::Float32Array W = float32_arg(env, info[0], "W", static_cast<size_t>(m) * d);
  Napi::Float32Array b = float32_arg(env, info[1], "b", static_cast<size_t>(m));
  const std::string impl = info[4].IsString() ? info[4].As<Napi::String>().Utf8Value() : "";
  if (impl != "reference" && impl != "active") throw_js(env, "ERR_ARG", "impl must be 'reference' or 'active'");
  Bf16Encoder e;
  e.resize(d, m);
  guarded(env, [&] {
    if (impl == "reference") pack_bf16_panels_reference(W.Data(), b.Data(), 0, e.panels, e);
    else pack_bf16_panels(W.Data(), b.Data(), 0, e.panels, e);
    return 0;
  });
  const size_t lat = static_cast<size_t>(e.panels) * kBf16PanelLatents;
  auto f32 = [&](const float* src) {
    Napi::Float32Array a = Napi::Float32Array::New(env, lat);
    std::memcpy(a.Data(), src, lat * sizeof(float));
    return a;
  };
  Napi::Uint16Array wp = Napi::Uint16Array::New(env, lat * e.dpad);
  std::memcpy(wp.Data(), e.Wp.data(), lat * e.dpad * sizeof(uint16_t));
  Napi::Uint8Array fin = Napi::Uint8Array::New(env, static_cast<size_t>(e.panels));
  std::memcpy(fin.Data(), e.finite.data(), static_cast<size_t>(e.panels));
  Napi::Object o = Napi::Object::New(env);
  o.Set("Wp", wp);
  o.Set("bias", f32(e.bias.data()));
  o.Set("P", f32(e.P.data()));
  o.Set("Q", f32(e.Q.data()));
  o.Set("C", f32(e.C.data()));
  o.Set("finite", fin);
  return o;
}

// The in-place streaming floor for the update benchmark (bench/update-floor.ts): a[i] = 0.5 a[i] + c[i],
// b[i] = 0.5 b[i] + c[i] over three arrays of n floats with the engine's threads (the update's pattern: weights and
// moments read and written in place, gradients read); returns the best GB/s (20 bytes per i) over `reps` sweeps.
Napi::Value stream_floor_js(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const long n = static_cast<long>(count_arg(env, info[0], "n", 1 << 16));
  const int reps = static_cast<int>(count_arg(env, info[1], "reps", 1));
  std::vector<float> a(n, 1.f), b(n, 2.f), c(n, 0.25f);
  const int T = num_threads();
  double best = 1e300;
  for (int rep = 0; rep <= reps; ++rep) {  // the first sweep warms the pages
    const auto t0 = std::chrono::steady_clock::now();
    parallel_for(T, [&](int t) {
      const long i0 = split_begin(n, T, t), i1 = split_begin(n, T, t + 1);
      float* pa = a.data();
      float* pb = b.data();
      const float* pc = c.data();
#pragma omp simd
      for (long i = i0; i < i1; ++i) {
        pa[i] = 0.5f * pa[i] + pc[i];
        pb[i] = 0.5f * pb[i] + pc[i];
      }
    });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (rep > 0) best = std::min(best, s);
  }
  return Napi::Number::New(env, 20.0 * n / best / 1e9);
}

void register_sae_functions(Napi::Env env, Napi::Object exports) {
  exports.Set("streamFloor", Napi::Function::New(env, stream_floor_js));
  exports.Set("pairCodeLoss", Napi::Function::New(env, pair_code_loss_js));
  exports.Set("packBf16", Napi::Function::New(env, pack_bf16_js));
}

}  // namespace cmsae::binding
