// The add(aIdx, aVal, kA, bIdx, bVal, kB, rows) call that NativeCorr and NativeCodes share: its arguments
// (checked views), the sync call and the async one (the target's add on a worker thread while `busy` is set).
#pragma once
#include <napi.h>

#include "args.h"
#include "async.h"

namespace cmsae::binding {

struct PairedCodesCall {
  Napi::Int32Array ai, bi;
  Napi::Float32Array av, bv;
  int kA, kB;
  long long rows;
};

inline PairedCodesCall parse_paired_codes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  PairedCodesCall c;
  c.rows = count_arg(env, info[6], "rows", 0);
  c.kA = static_cast<int>(count_arg(env, info[2], "kA", 1));
  c.kB = static_cast<int>(count_arg(env, info[5], "kB", 1));
  c.ai = int32_arg(env, info[0], "a.indices", c.rows * c.kA);
  c.av = float32_arg(env, info[1], "a.values", c.rows * c.kA);
  c.bi = int32_arg(env, info[3], "b.indices", c.rows * c.kB);
  c.bv = float32_arg(env, info[4], "b.values", c.rows * c.kB);
  return c;
}

// target.add(...) with the call's arguments, kernel errors as coded JS errors.
template <class Target>
void add_paired_codes(Napi::Env env, Target& target, const PairedCodesCall& c) {
  guarded(env, [&] { target.add(c.ai.Data(), c.av.Data(), c.kA, c.bi.Data(), c.bv.Data(), c.kB, c.rows); });
}

// target->add(...) on a worker thread; the typed arrays and `self` stay pinned until it settles and `busy` is
// cleared when it does.
template <class Target>
Napi::Value queue_paired_codes(Napi::Env env, Target* target, const PairedCodesCall& c, bool& busy, Napi::Value self) {
  const int32_t *ai = c.ai.Data(), *bi = c.bi.Data();
  const float *av = c.av.Data(), *bv = c.bv.Data();
  const int kA = c.kA, kB = c.kB;
  const long long rows = c.rows;
  busy = true;
  bool* flag = &busy;
  auto* w = new PromiseWorker(
      env, [target, ai, av, kA, bi, bv, kB, rows] { target->add(ai, av, kA, bi, bv, kB, rows); }, nullptr,
      [flag] { *flag = false; }, {c.ai, c.av, c.bi, c.bv, self});
  w->Queue();
  return w->promise();
}

}  // namespace cmsae::binding
