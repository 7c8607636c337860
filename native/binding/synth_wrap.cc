// N-API glue for the synthetic-data generator and its metrics helpers (native/synth/).
#include "synth_wrap.h"

#include <string>

#include "../synth/synth.h"
#include "args.h"
#include "async.h"

namespace cmsae::binding {
namespace {

// Integer argument in [lo, hi] (count_arg checks the type, integrality and the lower bound).
int int_arg(const Napi::CallbackInfo& info, int i, const char* name, long lo, long hi) {
  const long long v = count_arg(info.Env(), info[i], name, lo);
  if (v > hi) throw_js(info.Env(), "ERR_ARG", std::string(name) + " must be <= " + std::to_string(hi));
  return static_cast<int>(v);
}
double num_arg(const Napi::CallbackInfo& info, int i, const char* name) { return number_arg(info.Env(), info[i], name); }
uint64_t seed_arg(const Napi::CallbackInfo& info, int i) { return static_cast<uint64_t>(count_arg(info.Env(), info[i], "seed", 0)); }

// synthDictionary(d, n, delta, seed, maxIters) -> { atoms: Float32Array [n*d], steps, maxDot }
Napi::Value synth_dictionary(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int d = int_arg(info, 0, "d", 1, 1 << 20), n = int_arg(info, 1, "n", 1, 1 << 20);
  const double delta = num_arg(info, 2, "delta");
  const uint64_t seed = seed_arg(info, 3);
  const int iters = int_arg(info, 4, "maxIters", 1, 1 << 20);
  Napi::Float32Array out = Napi::Float32Array::New(env, static_cast<size_t>(n) * d);
  double mx = 0;
  const int steps = guarded(env, [&] { return bounded_dictionary(d, n, delta, seed, iters, out.Data(), &mx); });
  Napi::Object o = Napi::Object::New(env);
  o.Set("atoms", out);
  o.Set("steps", steps);
  o.Set("maxDot", mx);
  return o;
}

// synthPairedDictionary(d, nI, nS, nT, alpha, delta, seed, maxIters) -> { phiImage, phiShared, psiShared, psiText, steps, maxAbs }
Napi::Value synth_paired_dictionary(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int d = int_arg(info, 0, "d", 2, 1 << 20), nI = int_arg(info, 1, "nI", 0, 1 << 20), nS = int_arg(info, 2, "nS", 0, 1 << 20),
            nT = int_arg(info, 3, "nT", 0, 1 << 20);
  const double alpha = num_arg(info, 4, "alpha"), delta = num_arg(info, 5, "delta");
  const uint64_t seed = seed_arg(info, 6);
  const int iters = int_arg(info, 7, "maxIters", 1, 1 << 20);
  auto arr = [&](int n) { return Napi::Float32Array::New(env, static_cast<size_t>(n) * d); };
  Napi::Float32Array a = arr(nI), b = arr(nS), c = arr(nS), e = arr(nT);
  double mx = 0;
  const int steps = guarded(env, [&] { return bounded_paired_dictionary(d, nI, nS, nT, alpha, delta, seed, iters, a.Data(), b.Data(), c.Data(), e.Data(), &mx); });
  Napi::Object o = Napi::Object::New(env);
  o.Set("phiImage", a);
  o.Set("phiShared", b);
  o.Set("psiShared", c);
  o.Set("psiText", e);
  o.Set("steps", steps);
  o.Set("maxAbs", mx);
  return o;
}

// synthPartner(phi, n, d, alpha, seed) -> Float32Array psi
Napi::Value synth_partner(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int n = int_arg(info, 1, "n", 1, 1 << 24), d = int_arg(info, 2, "d", 1, 1 << 20);
  Napi::Float32Array phi = float32_arg(env, info[0], "phi", static_cast<size_t>(n) * d);
  const double alpha = num_arg(info, 3, "alpha");
  const uint64_t seed = seed_arg(info, 4);
  Napi::Float32Array out = Napi::Float32Array::New(env, static_cast<size_t>(n) * d);
  guarded(env, [&] { aligned_partner(phi.Data(), n, d, alpha, seed, out.Data()); });
  return out;
}

// synthSample(phiI, nI, phiS, nS, psiS, psiT, nT, d, N, pActive, noise, identical, l2, seed) -> { x, y }
Napi::Value synth_sample(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SynthSampleSpec s;
  s.nI = int_arg(info, 1, "nI", 0, 1 << 24);
  s.nS = int_arg(info, 3, "nS", 0, 1 << 24);
  s.nT = int_arg(info, 6, "nT", 0, 1 << 24);
  s.d = int_arg(info, 7, "d", 1, 1 << 20);
  const long N = int_arg(info, 8, "N", 0, 1 << 30);
  Napi::Float32Array a = float32_arg(env, info[0], "phiImage", static_cast<size_t>(s.nI) * s.d);
  Napi::Float32Array b = float32_arg(env, info[2], "phiShared", static_cast<size_t>(s.nS) * s.d);
  Napi::Float32Array c = float32_arg(env, info[4], "psiShared", static_cast<size_t>(s.nS) * s.d);
  Napi::Float32Array e = float32_arg(env, info[5], "psiText", static_cast<size_t>(s.nT) * s.d);
  s.phi_image = a.Data();
  s.phi_shared = b.Data();
  s.psi_shared = c.Data();
  s.psi_text = e.Data();
  s.p_active = num_arg(info, 9, "pActive");
  s.noise = num_arg(info, 10, "noise");
  s.identical_shared = info[11].ToBoolean();
  s.l2_normalize = info[12].ToBoolean();
  const uint64_t seed = seed_arg(info, 13);
  Napi::Float32Array x = Napi::Float32Array::New(env, static_cast<size_t>(N) * s.d);
  Napi::Float32Array y = Napi::Float32Array::New(env, static_cast<size_t>(N) * s.d);
  guarded(env, [&] { sample_pairs(s, N, seed, x.Data(), y.Data()); });
  Napi::Object o = Napi::Object::New(env);
  o.Set("x", x);
  o.Set("y", y);
  return o;
}

// argmaxCosine(W, m, G, n, d) -> { idx: Int32Array [n], cos: Float32Array [n] }
Napi::Value argmax_cos(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int m = int_arg(info, 1, "m", 1, 1 << 26), n = int_arg(info, 3, "n", 1, 1 << 26), d = int_arg(info, 4, "d", 1, 1 << 20);
  Napi::Float32Array W = float32_arg(env, info[0], "W", static_cast<size_t>(m) * d);
  Napi::Float32Array G = float32_arg(env, info[2], "G", static_cast<size_t>(n) * d);
  Napi::Int32Array idx = Napi::Int32Array::New(env, n);
  Napi::Float32Array cs = Napi::Float32Array::New(env, n);
  guarded(env, [&] { argmax_cosine(W.Data(), m, G.Data(), n, d, idx.Data(), cs.Data()); });
  Napi::Object o = Napi::Object::New(env);
  o.Set("idx", idx);
  o.Set("cos", cs);
  return o;
}

}  // namespace

void register_synth_functions(Napi::Env env, Napi::Object exports) {
  exports.Set("synthDictionary", Napi::Function::New(env, synth_dictionary));
  exports.Set("synthPartner", Napi::Function::New(env, synth_partner));
  exports.Set("synthPairedDictionary", Napi::Function::New(env, synth_paired_dictionary));
  exports.Set("synthSample", Napi::Function::New(env, synth_sample));
  exports.Set("argmaxCosine", Napi::Function::New(env, argmax_cos));
}

}  // namespace cmsae::binding
