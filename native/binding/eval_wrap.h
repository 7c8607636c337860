// Evaluation kernels of the addon: retrievalRanks(Async), rankingMetrics(Async), decoderDistanceHistogram,
// monosemanticityScores(Async).
#pragma once
#include <napi.h>

namespace cmsae::binding {
void register_eval_functions(Napi::Env env, Napi::Object exports);
}  // namespace cmsae::binding
