// The concept-index kernel of the addon: conceptIndexAsync.
#pragma once
#include <napi.h>

namespace cmsae::binding {
void register_concepts_functions(Napi::Env env, Napi::Object exports);
}  // namespace cmsae::binding
