#include "corr_wrap.h"

#include <cstring>
#include <string>

#include "../lap/align.h"
#include "../lap/assignment.h"
#include "../lap/certify.h"
#include "../lap/solver_policy.h"
#include "addon_data.h"
#include "args.h"
#include "async.h"
#include "paired_codes_call.h"

namespace cmsae::binding {
namespace {


// The device argument of a binding call: 'cpu' | 'cuda' (false | true), else ERR_ARG.
bool cuda_arg(const Napi::Env& env, const Napi::Value& v) {
  const std::string dev = v.As<Napi::String>().Utf8Value();
  if (dev != "cpu" && dev != "cuda") throw_js(env, "ERR_ARG", "device must be 'cpu' or 'cuda' (resolve 'auto' first)");
  return dev == "cuda";
}

}  // namespace

Napi::Function NativeCorr::define(Napi::Env env) {
  return DefineClass(env, "NativeCorr",
                     {InstanceMethod("add", &NativeCorr::add), InstanceMethod("addAsync", &NativeCorr::add_async),
                      InstanceMethod("merge", &NativeCorr::merge), InstanceMethod("serialize", &NativeCorr::serialize),
                      InstanceMethod("stats", &NativeCorr::stats), InstanceMethod("correlation", &NativeCorr::correlation),
                      InstanceMethod("top", &NativeCorr::top), InstanceMethod("dispose", &NativeCorr::dispose)});
}

// new NativeCorr(mA, mB) or new NativeCorr(serializedBytes: Uint8Array)
NativeCorr::NativeCorr(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeCorr>(info) {
  Napi::Env env = info.Env();
  guarded(env, [&] {
    if (info.Length() == 1 && info[0].IsTypedArray()) {
      Napi::TypedArray t = info[0].As<Napi::TypedArray>();
      if (t.TypedArrayType() != napi_uint8_array) throw_js(env, "ERR_DTYPE", "serialized state must be a Uint8Array");
      Napi::Uint8Array u = t.As<Napi::Uint8Array>();
      acc_ = std::make_unique<CorrAccumulator>(CorrAccumulator::deserialize(u.Data(), u.ElementLength()));
    } else {
      // new NativeCorr(mA, mB, 'cuda' | 'cpu')
      const long long mA = count_arg(env, info[0], "mA", 1), mB = count_arg(env, info[1], "mB", 1);
      const bool cuda = info.Length() > 2 && info[2].IsString() && cuda_arg(env, info[2]);
      acc_ = CorrAccumulator::create(mA, mB, cuda);
    }
  });
  accounted_bytes_ = static_cast<int64_t>(acc_->mA()) * acc_->mB() * 8;
  Napi::MemoryManagement::AdjustExternalMemory(env, accounted_bytes_);
}

void NativeCorr::Finalize(Napi::Env env) {
  if (accounted_bytes_ > 0) Napi::MemoryManagement::AdjustExternalMemory(env, -accounted_bytes_);
  accounted_bytes_ = 0;
}

CorrAccumulator& NativeCorr::acc(const Napi::Env& env) {
  if (!acc_) throw_js(env, "ERR_DISPOSED", "this CorrelationAccumulator was disposed");
  if (busy_) throw_js(env, "ERR_BUSY", "an async add on this accumulator is still running; await it first");
  return *acc_;
}

Napi::Value NativeCorr::add(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CorrAccumulator& a = acc(env);
  add_paired_codes(env, a, parse_paired_codes(info));
  return env.Undefined();
}

Napi::Value NativeCorr::add_async(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CorrAccumulator* a = &acc(env);
  return queue_paired_codes(env, a, parse_paired_codes(info), busy_, Value());
}

Napi::Value NativeCorr::merge(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CorrAccumulator& a = acc(env);
  AddonData* data = env.GetInstanceData<AddonData>();
  if (!info[0].IsObject() || !info[0].As<Napi::Object>().InstanceOf(data->corr_ctor.Value()))
    throw_js(env, "ERR_ARG", "merge needs another CorrelationAccumulator");
  NativeCorr* other = NativeCorr::Unwrap(info[0].As<Napi::Object>());
  CorrAccumulator& b = other->acc(env);
  guarded(env, [&] { a.merge(b); });
  return env.Undefined();
}

Napi::Value NativeCorr::serialize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<uint8_t> bytes = guarded(env, [&] { return acc(env).serialize(); });
  return copy_out<uint8_t, Napi::Uint8Array>(env, bytes);
}

// stats(minFires) -> { n, firesA, firesB, aliveA, aliveB, meanA, meanB, stdA, stdB }
Napi::Value NativeCorr::stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CorrAccumulator& a = acc(env);
  const double min_fires = number_arg(env, info[0], "minFires");
  const CorrStats st = guarded(env, [&] { return a.stats(min_fires); });
  Napi::Object o = Napi::Object::New(env);
  o.Set("n", static_cast<double>(a.n()));
  o.Set("firesA", copy_out<double, Napi::Float64Array>(env, a.side(false).fires));
  o.Set("firesB", copy_out<double, Napi::Float64Array>(env, a.side(true).fires));
  o.Set("aliveA", copy_out<uint8_t, Napi::Uint8Array>(env, st.a.alive));
  o.Set("aliveB", copy_out<uint8_t, Napi::Uint8Array>(env, st.b.alive));
  o.Set("meanA", copy_out<double, Napi::Float64Array>(env, st.a.mean));
  o.Set("meanB", copy_out<double, Napi::Float64Array>(env, st.b.mean));
  o.Set("stdA", copy_out<double, Napi::Float64Array>(env, st.a.std));
  o.Set("stdB", copy_out<double, Napi::Float64Array>(env, st.b.std));
  return o;
}

// correlation(minFires, out Float32Array | Float64Array [mA*mB])
Napi::Value NativeCorr::correlation(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CorrAccumulator& a = acc(env);
  const double min_fires = number_arg(env, info[0], "minFires");
  const size_t n = static_cast<size_t>(a.mA()) * a.mB();
  const bool f64 = info[1].IsTypedArray() && info[1].As<Napi::TypedArray>().TypedArrayType() == napi_float64_array;
  Napi::Float64Array o64 = f64 ? float64_arg(env, info[1], "out", n) : Napi::Float64Array();
  Napi::Float32Array o32 = f64 ? Napi::Float32Array() : float32_arg(env, info[1], "out", n);
  guarded(env, [&] {
    if (f64) a.correlation(min_fires, o64.Data());
    else a.correlation(min_fires, o32.Data());
  });
  return env.Undefined();
}

// top(k, minFires) -> { rowIndices, rowValues, colIndices, colValues }
Napi::Value NativeCorr::top(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CorrAccumulator& a = acc(env);
  const int k = static_cast<int>(count_arg(env, info[0], "k", 1));
  const double min_fires = number_arg(env, info[1], "minFires");
  if (k > a.mA() || k > a.mB()) throw_js(env, "ERR_ARG", "k must be <= mA and <= mB");
  Napi::Int32Array ri = Napi::Int32Array::New(env, static_cast<size_t>(a.mA()) * k);
  Napi::Float32Array rv = Napi::Float32Array::New(env, static_cast<size_t>(a.mA()) * k);
  Napi::Int32Array ci = Napi::Int32Array::New(env, static_cast<size_t>(a.mB()) * k);
  Napi::Float32Array cv = Napi::Float32Array::New(env, static_cast<size_t>(a.mB()) * k);
  guarded(env, [&] { a.top_correlations(min_fires, k, ri.Data(), rv.Data(), ci.Data(), cv.Data()); });
  Napi::Object o = Napi::Object::New(env);
  o.Set("rowIndices", ri);
  o.Set("rowValues", rv);
  o.Set("colIndices", ci);
  o.Set("colValues", cv);
  return o;
}

Napi::Value NativeCorr::dispose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!acc_) return env.Undefined();
  if (busy_) throw_js(env, "ERR_BUSY", "an async add on this accumulator is still running; await it before disposing");
  acc_.reset();
  Napi::MemoryManagement::AdjustExternalMemory(env, -accounted_bytes_);
  accounted_bytes_ = 0;
  return env.Undefined();
}

namespace {

// What a solve needs (plain data: safe to use on a worker thread); the policy is solve_assignment's.
struct SolveArgs {
  AssignmentInput in;
  LapOptions options;
};

struct SolveCall : SolveArgs {
  Napi::TypedArray data;  // pinned while an async solve runs
};

LapAlgorithm algorithm_arg(const Napi::Env& env, const Napi::Value& v) {
  const std::string a = v.As<Napi::String>().Utf8Value();
  if (a == "auto") return LapAlgorithm::Auto;
  if (a == "dense") return LapAlgorithm::Dense;
  if (a == "sparse") return LapAlgorithm::Sparse;
  throw_js(env, "ERR_ARG", "algorithm must be 'auto', 'dense' or 'sparse'");
}

SolveCall parse_solve(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SolveCall c;
  c.in.rows = count_arg(env, info[1], "rows", 0);
  c.in.cols = count_arg(env, info[2], "cols", 0);
  c.in.maximize = info[3].ToBoolean().Value();
  const size_t n = static_cast<size_t>(c.in.rows) * c.in.cols;
  if (!info[0].IsTypedArray()) throw_js(env, "ERR_DTYPE", "cost data must be a Float32Array or Float64Array");
  c.data = info[0].As<Napi::TypedArray>();
  if (c.data.TypedArrayType() == napi_float32_array) c.in.f32 = float32_arg(env, info[0], "cost", n).Data();
  else if (c.data.TypedArrayType() == napi_float64_array) c.in.f64 = float64_arg(env, info[0], "cost", n).Data();
  else throw_js(env, "ERR_DTYPE", "cost data must be a Float32Array or Float64Array");
  if (info.Length() > 4 && info[4].IsString()) c.options.algorithm = algorithm_arg(env, info[4]);
  if (info.Length() > 5 && info[5].IsNumber()) {
    const long long k = count_arg(env, info[5], "candidates", 1);
    if (k > kMaxCandidates) throw_js(env, "ERR_ARG", "candidates must be an integer in [1, " + std::to_string(kMaxCandidates) + "], got " + std::to_string(k));
    c.options.candidates = static_cast<int>(k);
  }
  if (info.Length() > 6 && info[6].IsString()) c.options.device = cuda_arg(env, info[6]);
  return c;
}

Napi::Object result_object(Napi::Env env, const AssignmentResult& r, const SparseStats& st) {
  Napi::Object o = Napi::Object::New(env);
  Napi::Object s = Napi::Object::New(env);
  s.Set("rounds", st.rounds);
  s.Set("violations", static_cast<double>(st.violations));
  s.Set("edges", static_cast<double>(st.edges));
  s.Set("weakRows", static_cast<double>(st.weak_rows));
  s.Set("warmRounds", st.warm_rounds);
  s.Set("fellBack", st.fell_back);
  s.Set("device", st.device);
  o.Set("stats", s);
  o.Set("rowToCol", copy_out<int32_t, Napi::Int32Array>(env, r.row_to_col));
  o.Set("colToRow", copy_out<int32_t, Napi::Int32Array>(env, r.col_to_row));
  o.Set("objective", r.objective);
  o.Set("u", copy_out<double, Napi::Float64Array>(env, r.u));
  o.Set("v", copy_out<double, Napi::Float64Array>(env, r.v));
  return o;
}

// solveAssignment(data, rows, cols, maximize) -> { rowToCol, colToRow, objective, u, v }
Napi::Value solve_assignment(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SolveCall c = parse_solve(info);
  SparseStats st;
  AssignmentResult r = guarded(env, [&] { return cmsae::solve_assignment(c.in, c.options, &st); });
  return result_object(env, r, st);
}

Napi::Value solve_assignment_async(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SolveCall c = parse_solve(info);
  auto result = std::make_shared<std::pair<AssignmentResult, SparseStats>>();
  auto call = std::make_shared<SolveArgs>(static_cast<const SolveArgs&>(c));
  auto* w = new PromiseWorker(
      env, [call, result] { result->first = cmsae::solve_assignment(call->in, call->options, &result->second); },
      [result](Napi::Env e) -> Napi::Value { return result_object(e, result->first, result->second); }, nullptr, {c.data});
  w->Queue();
  return w->promise();
}

// certifyAssignment(data, rows, cols, maximize, rowToCol, colToRow, u, v) -> { maxViolation, gap }
Napi::Value certify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SolveCall c = parse_solve(info);
  Napi::Int32Array rc = int32_arg(env, info[4], "rowToCol", c.in.rows);
  Napi::Int32Array cr = int32_arg(env, info[5], "colToRow", c.in.cols);
  Napi::Float64Array u = float64_arg(env, info[6], "u", c.in.rows);
  Napi::Float64Array v = float64_arg(env, info[7], "v", c.in.cols);
  double obj = 0;
  const Certificate cert =
      guarded(env, [&] { return certify_given_assignment(c.in, {rc.Data(), cr.Data(), u.Data(), v.Data()}, obj); });
  Napi::Object o = Napi::Object::New(env);
  o.Set("maxViolation", cert.max_violation);
  o.Set("gap", cert.gap);
  o.Set("objective", obj);
  return o;
}

// alignLatents(corr Float32Array[m*m], m, aliveA Uint8Array, aliveB Uint8Array, signed) -> Int32Array perm
Napi::Value align(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const long long m = count_arg(env, info[1], "m", 1);
  Napi::Float32Array corr = float32_arg(env, info[0], "correlation", static_cast<size_t>(m) * m);
  Napi::Uint8Array aa = typed_arg<Napi::Uint8Array>(env, info[2], "aliveA", m);
  Napi::Uint8Array ab = typed_arg<Napi::Uint8Array>(env, info[3], "aliveB", m);
  const bool device = info.Length() > 5 && info[5].IsString() && info[5].As<Napi::String>().Utf8Value() == "cuda";
  const bool use_signed = info[4].ToBoolean().Value();
  std::vector<int32_t> perm =
      guarded(env, [&] { return align_latents(corr.Data(), static_cast<int>(m), aa.Data(), ab.Data(), use_signed, device); });
  return copy_out<int32_t, Napi::Int32Array>(env, perm);
}

}  // namespace

// assignmentPolicy() -> { maxCandidates, defaultCandidates, sparseMinSide }: the solver policy's constants
// (native/lap/solver_policy.h), so that the TypeScript checks and defaults are not a second copy of them.
Napi::Value assignment_policy(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("maxCandidates", kMaxCandidates);
  o.Set("defaultCandidates", kDefaultCandidates);
  o.Set("sparseMinSide", static_cast<double>(kSparseMinSide));
  return o;
}

void register_lap_functions(Napi::Env env, Napi::Object exports) {
  exports.Set("assignmentPolicy", Napi::Function::New(env, assignment_policy));
  exports.Set("solveAssignment", Napi::Function::New(env, solve_assignment));
  exports.Set("solveAssignmentAsync", Napi::Function::New(env, solve_assignment_async));
  exports.Set("certifyAssignment", Napi::Function::New(env, certify));
  exports.Set("alignLatents", Napi::Function::New(env, align));
}

}  // namespace cmsae::binding
