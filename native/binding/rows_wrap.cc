// NativeDeviceRows: new NativeDeviceRows(rows, d), upload(r0, Float32Array, n), dispose().
#include "rows_wrap.h"

#include "../common/errors.h"
#include "addon_data.h"
#include "args.h"
#include "async.h"
#include "js_errors.h"
#include "../common/validate.h"

namespace cmsae::binding {

Napi::Function NativeDeviceRows::define(Napi::Env env) {
  return DefineClass(env, "NativeDeviceRows",
                     {InstanceMethod("upload", &NativeDeviceRows::upload), InstanceMethod("dispose", &NativeDeviceRows::dispose)});
}

NativeDeviceRows::NativeDeviceRows(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeDeviceRows>(info) {
  Napi::Env env = info.Env();
  const long long rows = count_arg(env, info[0], "rows", 1);
  const long long d = count_arg(env, info[1], "d", 1);
  DeviceRowsFactory make = device_rows_factory();
  if (!make) throw_js(env, "ERR_CUDA_UNAVAILABLE", "resident rows need the CUDA backend, and this build has none (built without nvcc)");
  guarded(env, [&] { rows_ = make(static_cast<long>(rows), static_cast<int>(d)); });
}

const DeviceRows& NativeDeviceRows::from(const Napi::Env& env, const Napi::Value& v, const char* what) {
  AddonData* data = env.GetInstanceData<AddonData>();
  if (!v.IsObject() || data->rows_ctor.IsEmpty() || !v.As<Napi::Object>().InstanceOf(data->rows_ctor.Value()))
    throw_js(env, "ERR_ARG", std::string(what) + " must be DeviceRows");
  NativeDeviceRows* r = Napi::ObjectWrap<NativeDeviceRows>::Unwrap(v.As<Napi::Object>());
  if (!r->rows_) throw_js(env, "ERR_DISPOSED", std::string(what) + " was disposed");
  return *r->rows_;
}

Napi::Value NativeDeviceRows::upload(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!rows_) throw_js(env, "ERR_DISPOSED", "these DeviceRows were disposed");
  const long long r0 = count_arg(env, info[0], "r0", 0);
  const long long n = count_arg(env, info[2], "n", 0);
  Napi::Float32Array x = float32_arg(env, info[1], "x", static_cast<size_t>(n) * rows_->dim());
  guarded(env, [&] {
    check_finite(x.Data(), n, rows_->dim(), "x");
    rows_->upload(static_cast<long>(r0), x.Data(), static_cast<long>(n));
  });
  return env.Undefined();
}

Napi::Value NativeDeviceRows::dispose(const Napi::CallbackInfo& info) {
  rows_.reset();
  return info.Env().Undefined();
}

}  // namespace cmsae::binding
