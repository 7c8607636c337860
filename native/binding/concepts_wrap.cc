// N-API glue for native/eval/concept_index.cc: argument checks on the JS thread, the kernel on a PromiseWorker.
#include "concepts_wrap.h"

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "../eval/concept_index.h"
#include "args.h"
#include "async.h"

namespace cmsae::binding {
namespace {

constexpr long long kMaxRows = 0x7fffffffLL;

long long int_arg(const Napi::CallbackInfo& info, int i, const char* name, long long lo, long long hi) {
  const long long v = count_arg(info.Env(), info[i], name, lo);
  if (v > hi) throw_js(info.Env(), "ERR_ARG", std::string(name) + " must be <= " + std::to_string(hi));
  return v;
}

struct ConceptPlan {
  CodeRows image{}, text{};
  const int32_t* image_of_text = nullptr;
  long m = 0;
  int top_n = 0, partners = 0;
};
struct ConceptResult {
  std::vector<int32_t> fire_image, fire_text, top_image_rows, top_text_rows, image_partners, text_partners;
  std::vector<float> top_image_values, top_text_values;
  std::vector<double> matched, image_partner_corr, text_partner_corr;
};

// conceptIndexAsync(iIdx, iVal, iRows, iK, tIdx, tVal, tRows, tK, imageOfText | null, m, topN, partners)
ConceptPlan parse(const Napi::CallbackInfo& info, std::vector<Napi::Value>& pins) {
  Napi::Env env = info.Env();
  ConceptPlan p;
  const long long ir = int_arg(info, 2, "image.rows", 1, kMaxRows), ik = int_arg(info, 3, "image.k", 1, 1 << 16);
  const long long tr = int_arg(info, 6, "text.rows", 1, kMaxRows), tk = int_arg(info, 7, "text.k", 1, 1 << 16);
  Napi::Int32Array ii = int32_arg(env, info[0], "image.indices", static_cast<size_t>(ir * ik));
  Napi::Float32Array iv = float32_arg(env, info[1], "image.values", static_cast<size_t>(ir * ik));
  Napi::Int32Array ti = int32_arg(env, info[4], "text.indices", static_cast<size_t>(tr * tk));
  Napi::Float32Array tv = float32_arg(env, info[5], "text.values", static_cast<size_t>(tr * tk));
  pins = {ii, iv, ti, tv};
  if (!info[8].IsNull() && !info[8].IsUndefined()) {
    Napi::Int32Array map = int32_arg(env, info[8], "imageOfText", static_cast<size_t>(tr));
    if (map.ElementLength() != static_cast<size_t>(tr))
      throw_js(env, "ERR_SHAPE", "imageOfText has " + std::to_string(map.ElementLength()) + " entries for " + std::to_string(tr) + " text rows");
    p.image_of_text = map.Data();
    pins.push_back(map);
  } else if (ir != tr) {
    throw_js(env, "ERR_SHAPE", std::to_string(ir) + " image rows and " + std::to_string(tr) + " text rows, and no imageOfText");
  }
  p.m = static_cast<long>(int_arg(info, 9, "m", 1, 1LL << 24));
  p.top_n = static_cast<int>(int_arg(info, 10, "topN", 1, 100000));
  p.partners = static_cast<int>(int_arg(info, 11, "partners", 1, 10000));
  if (static_cast<double>(p.m) * (p.top_n + p.partners) > 4e9) throw_js(env, "ERR_ARG", "m x (topN + partners) must be <= 4e9 entries");
  p.image = {ii.Data(), iv.Data(), static_cast<long>(ir), static_cast<int>(ik)};
  p.text = {ti.Data(), tv.Data(), static_cast<long>(tr), static_cast<int>(tk)};
  return p;
}

void run(const ConceptPlan& p, ConceptResult& r) {
  const size_t m = static_cast<size_t>(p.m), N = m * p.top_n, P = m * p.partners;
  r.fire_image.resize(m);
  r.fire_text.resize(m);
  r.matched.resize(m);
  r.top_image_rows.resize(N);
  r.top_text_rows.resize(N);
  r.top_image_values.resize(N);
  r.top_text_values.resize(N);
  r.image_partners.resize(P);
  r.text_partners.resize(P);
  r.image_partner_corr.resize(P);
  r.text_partner_corr.resize(P);
  const ConceptIndexOutput out{r.fire_image.data(), r.fire_text.data(), r.top_image_rows.data(), r.top_image_values.data(),
                               r.top_text_rows.data(), r.top_text_values.data(), r.matched.data(), r.image_partners.data(),
                               r.image_partner_corr.data(), r.text_partners.data(), r.text_partner_corr.data()};
  concept_index(p.image, p.text, p.image_of_text, p.m, p.top_n, p.partners, out);
}

Napi::Value result_object(Napi::Env env, const ConceptResult& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("fireImage", copy_out<int32_t, Napi::Int32Array>(env, r.fire_image));
  o.Set("fireText", copy_out<int32_t, Napi::Int32Array>(env, r.fire_text));
  o.Set("topImageRows", copy_out<int32_t, Napi::Int32Array>(env, r.top_image_rows));
  o.Set("topImageValues", copy_out<float, Napi::Float32Array>(env, r.top_image_values));
  o.Set("topTextRows", copy_out<int32_t, Napi::Int32Array>(env, r.top_text_rows));
  o.Set("topTextValues", copy_out<float, Napi::Float32Array>(env, r.top_text_values));
  o.Set("matched", copy_out<double, Napi::Float64Array>(env, r.matched));
  o.Set("imagePartners", copy_out<int32_t, Napi::Int32Array>(env, r.image_partners));
  o.Set("imagePartnerCorr", copy_out<double, Napi::Float64Array>(env, r.image_partner_corr));
  o.Set("textPartners", copy_out<int32_t, Napi::Int32Array>(env, r.text_partners));
  o.Set("textPartnerCorr", copy_out<double, Napi::Float64Array>(env, r.text_partner_corr));
  return o;
}

Napi::Value concept_index_async(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<Napi::Value> pins;
  auto plan = std::make_shared<ConceptPlan>(parse(info, pins));
  auto result = std::make_shared<ConceptResult>();
  auto* w = new PromiseWorker(
      env, [plan, result] { run(*plan, *result); }, [result](Napi::Env e) -> Napi::Value { return result_object(e, *result); }, nullptr, pins);
  w->Queue();
  return w->promise();
}

}  // namespace

void register_concepts_functions(Napi::Env env, Napi::Object exports) {
  exports.Set("conceptIndexAsync", Napi::Function::New(env, concept_index_async));
}

}  // namespace cmsae::binding
