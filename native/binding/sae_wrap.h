// NativeSae: the JS handle that owns a SaeModel (weights, optimizer state, scratch buffers).
#pragma once
#include <napi.h>

#include <memory>

#include "../sae/model.h"

namespace cmsae::binding {

class NativeSae : public Napi::ObjectWrap<NativeSae> {
 public:
  static Napi::Function define(Napi::Env env);
  explicit NativeSae(const Napi::CallbackInfo& info);
  ~NativeSae() override;
  // Called when the GC collects an SAE that was never disposed: V8 stops counting its native memory.
  void Finalize(Napi::Env env) override;

 private:
  SaeModel& model(const Napi::Env& env, bool allow_busy = false);
  size_t external_bytes() const;

  Napi::Value init(const Napi::CallbackInfo& info);
  Napi::Value encode(const Napi::CallbackInfo& info);
  Napi::Value encode_async(const Napi::CallbackInfo& info);
  Napi::Value decode(const Napi::CallbackInfo& info);
  Napi::Value step(const Napi::CallbackInfo& info);
  Napi::Value step_async(const Napi::CallbackInfo& info);
  Napi::Value forward_backward(const Napi::CallbackInfo& info);
  Napi::Value step_rows(const Napi::CallbackInfo& info);
  Napi::Value step_rows_async(const Napi::CallbackInfo& info);
  Napi::Value forward_backward_rows(const Napi::CallbackInfo& info);
  Napi::Value apply_update(const Napi::CallbackInfo& info);
  Napi::Value read_gradients(const Napi::CallbackInfo& info);
  Napi::Value read_weights(const Napi::CallbackInfo& info);
  Napi::Value write_weights(const Napi::CallbackInfo& info);
  Napi::Value read_state(const Napi::CallbackInfo& info);
  Napi::Value write_state(const Napi::CallbackInfo& info);
  Napi::Value last_codes(const Napi::CallbackInfo& info);
  Napi::Value status(const Napi::CallbackInfo& info);
  Napi::Value set_options(const Napi::CallbackInfo& info);
  Napi::Value dispose(const Napi::CallbackInfo& info);

  std::unique_ptr<SaeModel> model_;
  bool busy_ = false;
  size_t accounted_bytes_ = 0;
};

// Free functions of the SAE engine (pairCodeLoss).
void register_sae_functions(Napi::Env env, Napi::Object exports);

}  // namespace cmsae::binding
