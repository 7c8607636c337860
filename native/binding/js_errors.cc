#include "js_errors.h"

#include "addon_data.h"

namespace cmsae::binding {

void register_error_class(Napi::Env env, Napi::Function ctor) {
  AddonData* data = env.GetInstanceData<AddonData>();
  data->error_ctor = Napi::Persistent(ctor);
}

Napi::Error make_error(Napi::Env env, const std::string& code, const std::string& message) {
  AddonData* data = env.GetInstanceData<AddonData>();
  if (data && !data->error_ctor.IsEmpty()) {
    Napi::Value obj = data->error_ctor.New({Napi::String::New(env, code), Napi::String::New(env, message)});
    return Napi::Error(env, obj);
  }
  Napi::Error err = Napi::Error::New(env, message);
  err.Set("code", Napi::String::New(env, code));
  return err;
}

void throw_js(Napi::Env env, const std::string& code, const std::string& message) {
  throw make_error(env, code, message);
}

}  // namespace cmsae::binding
