// NativeCodes: JS handle owning a CodeStore (paired codes for the large-m alignment).
#pragma once
#include <napi.h>

#include <memory>

#include "../coact/code_store.h"

namespace cmsae::binding {

class NativeCodes : public Napi::ObjectWrap<NativeCodes> {
 public:
  static Napi::Function define(Napi::Env env);
  explicit NativeCodes(const Napi::CallbackInfo& info);

 private:
  CodeStore& store(const Napi::Env& env);
  Napi::Value add(const Napi::CallbackInfo& info);
  Napi::Value add_async(const Napi::CallbackInfo& info);
  Napi::Value merge(const Napi::CallbackInfo& info);
  Napi::Value serialize(const Napi::CallbackInfo& info);
  Napi::Value describe(const Napi::CallbackInfo& info);
  Napi::Value align(const Napi::CallbackInfo& info);
  Napi::Value align_async(const Napi::CallbackInfo& info);
  Napi::Value correlation(const Napi::CallbackInfo& info);
  Napi::Value dispose(const Napi::CallbackInfo& info);

  std::unique_ptr<CodeStore> store_;
  bool busy_ = false;
};

}  // namespace cmsae::binding
