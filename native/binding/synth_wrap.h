// Synthetic-data generator functions of the addon (synthDictionary, synthPartner, synthSample, argmaxCosine).
#pragma once
#include <napi.h>

namespace cmsae::binding {
void register_synth_functions(Napi::Env env, Napi::Object exports);
}  // namespace cmsae::binding
