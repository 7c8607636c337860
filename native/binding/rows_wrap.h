// NativeDeviceRows: JS handle owning embedding rows resident on the CUDA device (a training split).
#pragma once
#include <napi.h>

#include <memory>

#include "../sae/backend.h"

namespace cmsae::binding {

class NativeDeviceRows : public Napi::ObjectWrap<NativeDeviceRows> {
 public:
  static Napi::Function define(Napi::Env env);
  explicit NativeDeviceRows(const Napi::CallbackInfo& info);
  // The rows behind a JS value (ERR_ARG when it is not a live NativeDeviceRows).
  static const DeviceRows& from(const Napi::Env& env, const Napi::Value& v, const char* what);

 private:
  Napi::Value upload(const Napi::CallbackInfo& info);
  Napi::Value dispose(const Napi::CallbackInfo& info);
  std::unique_ptr<DeviceRows> rows_;
};

}  // namespace cmsae::binding
