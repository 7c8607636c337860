// Per-environment addon state (one per main thread / worker_thread).
#pragma once
#include <napi.h>

namespace cmsae::binding {

struct AddonData {
  Napi::FunctionReference error_ctor;
  Napi::FunctionReference sae_ctor;
  Napi::FunctionReference corr_ctor;
  Napi::FunctionReference codes_ctor;
  Napi::FunctionReference rows_ctor;
};

}  // namespace cmsae::binding
