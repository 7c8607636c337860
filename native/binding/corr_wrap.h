// NativeCorr: JS handle owning a CorrAccumulator.
#pragma once
#include <napi.h>

#include <memory>

#include "../corr/corr_accumulator.h"

namespace cmsae::binding {

class NativeCorr : public Napi::ObjectWrap<NativeCorr> {
 public:
  static Napi::Function define(Napi::Env env);
  explicit NativeCorr(const Napi::CallbackInfo& info);
  // Called when the GC collects an accumulator that was never disposed: V8 stops counting its native memory.
  void Finalize(Napi::Env env) override;

 private:
  CorrAccumulator& acc(const Napi::Env& env);
  Napi::Value add(const Napi::CallbackInfo& info);
  Napi::Value add_async(const Napi::CallbackInfo& info);
  Napi::Value merge(const Napi::CallbackInfo& info);
  Napi::Value serialize(const Napi::CallbackInfo& info);
  Napi::Value stats(const Napi::CallbackInfo& info);
  Napi::Value correlation(const Napi::CallbackInfo& info);
  Napi::Value top(const Napi::CallbackInfo& info);
  Napi::Value dispose(const Napi::CallbackInfo& info);

  std::unique_ptr<CorrAccumulator> acc_;
  bool busy_ = false;
  int64_t accounted_bytes_ = 0;
};

// Module functions for the assignment solver and latent alignment.
void register_lap_functions(Napi::Env env, Napi::Object exports);

}  // namespace cmsae::binding
