#include "codes_wrap.h"

#include <string>

#include "../coact/align_codes.h"
#include "addon_data.h"
#include "args.h"
#include "async.h"
#include "paired_codes_call.h"

namespace cmsae::binding {
namespace {

AlignCodesOptions parse_align(const Napi::Env& env, const Napi::Value& v) {
  AlignCodesOptions o;
  if (!v.IsObject()) throw_js(env, "ERR_ARG", "align options must be an object");
  const Napi::Object obj = v.As<Napi::Object>();
  o.use_signed = opt_bool(obj, "signed", true);
  o.min_fires = opt_number(obj, "minFires", 1);
  o.memory_budget = opt_number(obj, "memoryBudget", 0);
  o.candidates = static_cast<int>(opt_number(obj, "candidates", kDefaultCandidates));
  o.keep_cofiring = opt_bool(obj, "keepCofiring", true);
  const Napi::Value path = obj.Get("path");
  const std::string p = path.IsString() ? path.As<Napi::String>().Utf8Value() : "auto";
  if (p == "auto") o.path = AlignPath::Auto;
  else if (p == "dense") o.path = AlignPath::Dense;
  else if (p == "large") o.path = AlignPath::Large;
  else throw_js(env, "ERR_ARG", "option path must be 'auto', 'dense' or 'large', got '" + p + "'");
  return o;
}

Napi::Object plan_object(Napi::Env env, const AlignMemoryPlan& p) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("path", p.use_large ? "large" : "dense");
  o.Set("budget", p.budget);
  o.Set("codes", p.codes);
  o.Set("layout", p.layout);
  o.Set("scratch", p.scratch);
  o.Set("dense", p.dense_total());
  o.Set("large", p.large_total());
  o.Set("cache", p.cache);
  return o;
}

Napi::Object result_object(Napi::Env env, const AlignCodesResult& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("n", static_cast<double>(r.n));
  o.Set("firesA", copy_out<double, Napi::Float64Array>(env, r.side_a.fires));
  o.Set("firesB", copy_out<double, Napi::Float64Array>(env, r.side_b.fires));
  o.Set("aliveA", copy_out<uint8_t, Napi::Uint8Array>(env, r.stats.a.alive));
  o.Set("aliveB", copy_out<uint8_t, Napi::Uint8Array>(env, r.stats.b.alive));
  o.Set("meanA", copy_out<double, Napi::Float64Array>(env, r.stats.a.mean));
  o.Set("meanB", copy_out<double, Napi::Float64Array>(env, r.stats.b.mean));
  o.Set("stdA", copy_out<double, Napi::Float64Array>(env, r.stats.a.std));
  o.Set("stdB", copy_out<double, Napi::Float64Array>(env, r.stats.b.std));
  o.Set("rowToCol", copy_out<int32_t, Napi::Int32Array>(env, r.row_to_col));
  if (!r.perm.empty()) o.Set("perm", copy_out<int32_t, Napi::Int32Array>(env, r.perm));
  o.Set("matchedCorrelation", copy_out<float, Napi::Float32Array>(env, r.matched));
  o.Set("objective", r.objective);
  Napi::Object d = Napi::Object::New(env);
  d.Set("u", copy_out<double, Napi::Float64Array>(env, r.dual_a));
  d.Set("v", copy_out<double, Napi::Float64Array>(env, r.dual_b));
  o.Set("duals", d);
  o.Set("plan", plan_object(env, r.plan));
  Napi::Object s = Napi::Object::New(env);
  s.Set("rounds", r.large.rounds);
  s.Set("warmRounds", r.large.warm_rounds);
  s.Set("violations", static_cast<double>(r.large.violations));
  s.Set("edges", static_cast<double>(r.large.edges));
  s.Set("rowsScanned", static_cast<double>(r.large.rows_scanned));
  s.Set("cofirePairs", r.large.cofire_pairs);
  s.Set("rowPasses", r.large.row_passes);
  s.Set("weakRows", static_cast<double>(r.large.weak_rows));
  s.Set("cached", r.large.cached);
  o.Set("largeStats", s);
  Napi::Object t = Napi::Object::New(env);
  t.Set("stats", r.seconds_stats);
  t.Set("layout", r.seconds_layout);
  t.Set("solve", r.seconds_solve);
  o.Set("seconds", t);
  return o;
}

}  // namespace

Napi::Function NativeCodes::define(Napi::Env env) {
  return DefineClass(env, "NativeCodes",
                     {InstanceMethod("add", &NativeCodes::add), InstanceMethod("addAsync", &NativeCodes::add_async),
                      InstanceMethod("merge", &NativeCodes::merge), InstanceMethod("serialize", &NativeCodes::serialize),
                      InstanceMethod("describe", &NativeCodes::describe), InstanceMethod("align", &NativeCodes::align),
                      InstanceMethod("alignAsync", &NativeCodes::align_async), InstanceMethod("correlation", &NativeCodes::correlation),
                      InstanceMethod("dispose", &NativeCodes::dispose)});
}

// new NativeCodes(mA, mB, rowStart, tag) or new NativeCodes(serializedBytes: Uint8Array)
NativeCodes::NativeCodes(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeCodes>(info) {
  Napi::Env env = info.Env();
  guarded(env, [&] {
    if (info.Length() == 1 && info[0].IsTypedArray()) {
      Napi::TypedArray t = info[0].As<Napi::TypedArray>();
      if (t.TypedArrayType() != napi_uint8_array) throw_js(env, "ERR_DTYPE", "a serialized code store must be a Uint8Array");
      Napi::Uint8Array u = t.As<Napi::Uint8Array>();
      store_ = std::make_unique<CodeStore>(CodeStore::deserialize(u.Data(), u.ElementLength()));
    } else {
      const long long mA = count_arg(env, info[0], "mA", 1), mB = count_arg(env, info[1], "mB", 1);
      const long long row_start = count_arg(env, info[2], "rowStart", 0);
      const std::string tag = info[3].IsString() ? info[3].As<Napi::String>().Utf8Value() : "";
      store_ = std::make_unique<CodeStore>(mA, mB, row_start, tag);
    }
  });
}

CodeStore& NativeCodes::store(const Napi::Env& env) {
  if (!store_) throw_js(env, "ERR_DISPOSED", "this CoactivationCodes store was disposed");
  if (busy_) throw_js(env, "ERR_BUSY", "an async call on this code store is still running; await it first");
  return *store_;
}

Napi::Value NativeCodes::add(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CodeStore& s = store(env);
  add_paired_codes(env, s, parse_paired_codes(info));
  return env.Undefined();
}

Napi::Value NativeCodes::add_async(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CodeStore* s = &store(env);
  return queue_paired_codes(env, s, parse_paired_codes(info), busy_, Value());
}

Napi::Value NativeCodes::merge(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CodeStore& a = store(env);
  AddonData* data = env.GetInstanceData<AddonData>();
  if (!info[0].IsObject() || !info[0].As<Napi::Object>().InstanceOf(data->codes_ctor.Value()))
    throw_js(env, "ERR_ARG", "merge needs another CoactivationCodes store");
  CodeStore& b = NativeCodes::Unwrap(info[0].As<Napi::Object>())->store(env);
  guarded(env, [&] { a.merge(b); });
  return env.Undefined();
}

Napi::Value NativeCodes::serialize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<uint8_t> bytes = guarded(env, [&] { return store(env).serialize(); });
  return copy_out<uint8_t, Napi::Uint8Array>(env, bytes);
}

// describe() -> { mA, mB, rows, nnzA, nnzB, bytes, segments, tag }
Napi::Value NativeCodes::describe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CodeStore& s = store(env);
  Napi::Object o = Napi::Object::New(env);
  o.Set("mA", s.mA());
  o.Set("mB", s.mB());
  o.Set("rows", static_cast<double>(s.rows()));
  o.Set("nnzA", static_cast<double>(s.nnz(false)));
  o.Set("nnzB", static_cast<double>(s.nnz(true)));
  o.Set("bytes", static_cast<double>(s.bytes()));
  o.Set("segments", static_cast<double>(s.segment_count()));
  o.Set("tag", s.tag());
  return o;
}

Napi::Value NativeCodes::align(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CodeStore& s = store(env);
  const AlignCodesOptions o = parse_align(env, info[0]);
  const AlignCodesResult r = guarded(env, [&] { return align_codes(s, o); });
  return result_object(env, r);
}

Napi::Value NativeCodes::align_async(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CodeStore* s = &store(env);
  const AlignCodesOptions o = parse_align(env, info[0]);
  auto r = std::make_shared<AlignCodesResult>();
  busy_ = true;
  auto* w = new PromiseWorker(
      env, [s, o, r] { *r = align_codes(*s, o); }, [r](Napi::Env e) -> Napi::Value { return result_object(e, *r); },
      [this] { busy_ = false; }, {Value()});
  w->Queue();
  return w->promise();
}

// correlation(minFires, out Float32Array [mA*mB])
Napi::Value NativeCodes::correlation(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CodeStore& s = store(env);
  const double min_fires = number_arg(env, info[0], "minFires");
  Napi::Float32Array out = float32_arg(env, info[1], "out", static_cast<size_t>(s.mA()) * s.mB());
  guarded(env, [&] { codes_correlation(s, min_fires, out.Data()); });
  return env.Undefined();
}

Napi::Value NativeCodes::dispose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (busy_) throw_js(env, "ERR_BUSY", "an async call on this code store is still running; await it first");
  store_.reset();
  return env.Undefined();
}

}  // namespace cmsae::binding
