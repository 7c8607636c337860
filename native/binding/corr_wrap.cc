#include "corr_wrap.h"

#include <cstring>
#include <string>

#include "../common/validate.h"
#include "../lap/align.h"
#include "../lap/assignment.h"
#include "addon_data.h"
#include "args.h"
#include "async.h"

namespace cmsae::binding {
namespace {

// add(aIdx, aVal, kA, bIdx, bVal, kB, rows) arguments.
struct AddCall {
  Napi::Int32Array ai, bi;
  Napi::Float32Array av, bv;
  int kA, kB;
  long long rows;
};

AddCall parse_add(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  AddCall c;
  c.rows = count_arg(env, info[6], "rows", 0);
  c.kA = static_cast<int>(count_arg(env, info[2], "kA", 1));
  c.kB = static_cast<int>(count_arg(env, info[5], "kB", 1));
  c.ai = int32_arg(env, info[0], "a.indices", c.rows * c.kA);
  c.av = float32_arg(env, info[1], "a.values", c.rows * c.kA);
  c.bi = int32_arg(env, info[3], "b.indices", c.rows * c.kB);
  c.bv = float32_arg(env, info[4], "b.values", c.rows * c.kB);
  return c;
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
      const long long mA = count_arg(env, info[0], "mA", 1), mB = count_arg(env, info[1], "mB", 1);
      if (mA > (1 << 28) || mB > (1 << 28) || mA * mB > (1LL << 32))
        throw_js(env, "ERR_ARG", "mA x mB = " + std::to_string(mA * mB) +
                                     " co-moments (8 bytes each) is more than this accumulator supports (2^32)");
      acc_ = std::make_unique<CorrAccumulator>(static_cast<int>(mA), static_cast<int>(mB));
      // new NativeCorr(mA, mB, 'cuda' | 'cpu')
      if (info.Length() > 2 && info[2].IsString()) {
        const std::string dev = info[2].As<Napi::String>().Utf8Value();
        if (dev != "cpu" && dev != "cuda") throw_js(env, "ERR_ARG", "device must be 'cpu' or 'cuda' (resolve 'auto' first)");
        acc_->use_device(dev == "cuda");
      }
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
  AddCall c = parse_add(info);
  guarded(env, [&] { a.add(c.ai.Data(), c.av.Data(), c.kA, c.bi.Data(), c.bv.Data(), c.kB, c.rows); });
  return env.Undefined();
}

Napi::Value NativeCorr::add_async(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CorrAccumulator* a = &acc(env);
  AddCall c = parse_add(info);
  const int32_t *ai = c.ai.Data(), *bi = c.bi.Data();
  const float *av = c.av.Data(), *bv = c.bv.Data();
  const int kA = c.kA, kB = c.kB;
  const long long rows = c.rows;
  busy_ = true;
  auto* w = new PromiseWorker(
      env, [a, ai, av, kA, bi, bv, kB, rows] { a->add(ai, av, kA, bi, bv, kB, rows); }, nullptr,
      [this] { busy_ = false; }, {c.ai, c.av, c.bi, c.bv, Value()});
  w->Queue();
  return w->promise();
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
  CorrResult ra, rb;
  guarded(env, [&] {
    a.side_stats(false, min_fires, ra);
    a.side_stats(true, min_fires, rb);
  });
  Napi::Object o = Napi::Object::New(env);
  o.Set("n", static_cast<double>(a.n()));
  o.Set("firesA", copy_out<double, Napi::Float64Array>(env, a.side(false).fires));
  o.Set("firesB", copy_out<double, Napi::Float64Array>(env, a.side(true).fires));
  o.Set("aliveA", copy_out<uint8_t, Napi::Uint8Array>(env, ra.alive));
  o.Set("aliveB", copy_out<uint8_t, Napi::Uint8Array>(env, rb.alive));
  o.Set("meanA", copy_out<double, Napi::Float64Array>(env, ra.mean));
  o.Set("meanB", copy_out<double, Napi::Float64Array>(env, rb.mean));
  o.Set("stdA", copy_out<double, Napi::Float64Array>(env, ra.std));
  o.Set("stdB", copy_out<double, Napi::Float64Array>(env, rb.std));
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
    CorrResult ra, rb;
    a.side_stats(false, min_fires, ra);
    a.side_stats(true, min_fires, rb);
    if (f64) a.correlation(ra, rb, o64.Data());
    else a.correlation(ra, rb, o32.Data());
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
  guarded(env, [&] {
    CorrResult ra, rb;
    a.side_stats(false, min_fires, ra);
    a.side_stats(true, min_fires, rb);
    a.top_correlations(ra, rb, k, ri.Data(), rv.Data(), ci.Data(), cv.Data());
  });
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

// What a solve needs (plain data: safe to use on a worker thread).
struct SolvePlan {
  AssignmentInput in;
  std::string algorithm = "auto";
  int k = 16;
  bool device = false;  // candidate and pricing passes on the CUDA device
};

struct SolveCall : SolvePlan {
  Napi::TypedArray data;  // pinned while an async solve runs
};

// 'auto' takes the certified sparse path from 512 rows/cols up, the dense solver below.
AssignmentResult run_solve(const SolvePlan& c, SparseStats* stats) {
  const bool sparse = c.algorithm == "sparse" || (c.algorithm == "auto" && std::min(c.in.rows, c.in.cols) >= 512);
  if (!sparse) return solve_assignment_dense(c.in);
  return solve_assignment_sparse(c.in, static_cast<int>(std::min<long>(c.k, std::max(c.in.rows, c.in.cols))), 12, stats, c.device);
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
  if (info.Length() > 4 && info[4].IsString()) {
    c.algorithm = info[4].As<Napi::String>().Utf8Value();
    if (c.algorithm != "auto" && c.algorithm != "dense" && c.algorithm != "sparse")
      throw_js(env, "ERR_ARG", "algorithm must be 'auto', 'dense' or 'sparse'");
  }
  if (info.Length() > 5 && info[5].IsNumber()) {
    const long long k = count_arg(env, info[5], "candidates", 1);
    if (k > kMaxCandidates) throw_js(env, "ERR_ARG", "candidates must be an integer in [1, " + std::to_string(kMaxCandidates) + "], got " + std::to_string(k));
    c.k = static_cast<int>(k);
  }
  if (info.Length() > 6 && info[6].IsString()) {
    const std::string dev = info[6].As<Napi::String>().Utf8Value();
    if (dev != "cpu" && dev != "cuda") throw_js(env, "ERR_ARG", "device must be 'cpu' or 'cuda' (resolve 'auto' first)");
    c.device = dev == "cuda";
  }
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
  AssignmentResult r = guarded(env, [&] { return run_solve(c, &st); });
  return result_object(env, r, st);
}

Napi::Value solve_assignment_async(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SolveCall c = parse_solve(info);
  auto result = std::make_shared<std::pair<AssignmentResult, SparseStats>>();
  auto call = std::make_shared<SolvePlan>(static_cast<const SolvePlan&>(c));
  auto* w = new PromiseWorker(
      env, [call, result] { result->first = run_solve(*call, &result->second); },
      [result](Napi::Env e) -> Napi::Value { return result_object(e, result->first, result->second); }, nullptr, {c.data});
  w->Queue();
  return w->promise();
}

// certifyAssignment(data, rows, cols, maximize, rowToCol, colToRow, u, v) -> { maxViolation, gap }
Napi::Value certify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SolveCall c = parse_solve(info);
  AssignmentResult r;
  Napi::Int32Array rc = int32_arg(env, info[4], "rowToCol", c.in.rows);
  Napi::Int32Array cr = int32_arg(env, info[5], "colToRow", c.in.cols);
  Napi::Float64Array u = float64_arg(env, info[6], "u", c.in.rows);
  Napi::Float64Array v = float64_arg(env, info[7], "v", c.in.cols);
  r.row_to_col.assign(rc.Data(), rc.Data() + c.in.rows);
  r.col_to_row.assign(cr.Data(), cr.Data() + c.in.cols);
  r.u.assign(u.Data(), u.Data() + c.in.rows);
  r.v.assign(v.Data(), v.Data() + c.in.cols);
  double obj = 0;
  for (long i = 0; i < c.in.rows; ++i) {
    const int32_t j = r.row_to_col[i];
    if (j < -1 || j >= c.in.cols) throw_js(env, "ERR_RANGE", "rowToCol has an index outside [-1, cols)");
    if (j >= 0) obj += c.in.f32 ? c.in.f32[i * c.in.cols + j] : c.in.f64[i * c.in.cols + j];
  }
  r.objective = obj;
  Certificate cert = certify_assignment(c.in, r);
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
  std::vector<int32_t> perm = guarded(env, [&] {
    check_finite(corr.Data(), m, static_cast<int>(m), "correlation");
    const bool device = info.Length() > 5 && info[5].IsString() && info[5].As<Napi::String>().Utf8Value() == "cuda";
    return align_latents(corr.Data(), static_cast<int>(m), aa.Data(), ab.Data(), info[4].ToBoolean().Value(), device);
  });
  return copy_out<int32_t, Napi::Int32Array>(env, perm);
}

}  // namespace

void register_lap_functions(Napi::Env env, Napi::Object exports) {
  exports.Set("solveAssignment", Napi::Function::New(env, solve_assignment));
  exports.Set("solveAssignmentAsync", Napi::Function::New(env, solve_assignment_async));
  exports.Set("certifyAssignment", Napi::Function::New(env, certify));
  exports.Set("alignLatents", Napi::Function::New(env, align));
}

}  // namespace cmsae::binding
