// Maps kernel errors to JS errors that carry a stable `code` (constructed by the JS SaeError class
// when lib/ has registered it, else a plain Error with .code).
#pragma once
#include <napi.h>

#include <string>

namespace cmsae::binding {

void register_error_class(Napi::Env env, Napi::Function ctor);
Napi::Error make_error(Napi::Env env, const std::string& code, const std::string& message);
[[noreturn]] void throw_js(Napi::Env env, const std::string& code, const std::string& message);

}  // namespace cmsae::binding
