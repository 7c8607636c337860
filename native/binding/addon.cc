// Module entry: exports NativeSae, build/runtime info, thread and SIMD controls, error-class hook.
#include <napi.h>

#include <cstdlib>
#include <string>

#include "../common/cpu_features.h"
#include "../devices/emulated_devices.h"
#include "../common/thread_pool.h"
#include "../sae/certified_encode.h"
#include "../sae/kernels.h"
#include "addon_data.h"
#include "args.h"
#include "js_errors.h"
#include "concepts_wrap.h"
#include "codes_wrap.h"
#include "corr_wrap.h"
#include "eval_wrap.h"
#include "rows_wrap.h"
#include "sae_wrap.h"
#include "synth_wrap.h"

#if defined(CMSAE_WITH_CUDA)
#include "device_info.h"
#include "corr_device.h"
#include "lap_device.h"
#include "sae_device.h"
#endif

#ifndef CMSAE_BUILD_FLAVOR
#define CMSAE_BUILD_FLAVOR "cpu"
#endif

namespace cmsae::binding {
namespace {

bool emulating_cuda() {
  const char* e = std::getenv("CMSAE_EMULATE_CUDA");
  return e && std::string(e) == "1";
}

Napi::Value build_info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("flavor", CMSAE_BUILD_FLAVOR);
  o.Set("simdDetected", simd_level_name(detect_simd_level()));
  o.Set("simd", simd_level_name(active_simd_level()));
  o.Set("kernels", kernels().name);
  o.Set("encodeMode", encode_mode());
  o.Set("encodePath", encode_path_name(active_encode_path()));
  Napi::Array paths = Napi::Array::New(env);
  uint32_t n_paths = 0;
  for (EncodePath p : {EncodePath::AmxBf16, EncodePath::Avx512Bf16, EncodePath::Fp32})
    if (encode_path_available(p)) paths.Set(n_paths++, encode_path_name(p));
  o.Set("encodePaths", paths);
  o.Set("threads", num_threads());
#if defined(CMSAE_WITH_CUDA)
  o.Set("cudaCompiled", true);
#else
  o.Set("cudaCompiled", false);
#endif
#if defined(__clang__)
  o.Set("compiler", "clang " __clang_version__);
#elif defined(__GNUC__)
  o.Set("compiler", "gcc " __VERSION__);
#else
  o.Set("compiler", "unknown");
#endif
  return o;
}

Napi::Value cuda_info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  if (emulating_cuda()) {
    o.Set("compiled", true);
    o.Set("available", true);
    o.Set("emulated", true);
    o.Set("deviceCount", 1);
    o.Set("deviceName", "CPU emulation (CMSAE_EMULATE_CUDA=1)");
    o.Set("message", "the device interfaces run on the CPU engine (a test aid, not a GPU)");
    // Small on purpose: emulated "device" memory is host memory, so only small training splits go resident.
    o.Set("freeMemory", 512.0 * (1LL << 20));
    o.Set("totalMemory", 512.0 * (1LL << 20));
    return o;
  }
#if defined(CMSAE_WITH_CUDA)
  cuda::DeviceInfo d = cuda::query_devices();
  o.Set("compiled", true);
  o.Set("available", d.available);
  o.Set("status", d.status);
  o.Set("deviceCount", d.device_count);
  o.Set("runtimeVersion", d.runtime_version);
  o.Set("driverVersion", d.driver_version);
  o.Set("deviceName", d.name);
  o.Set("message", d.message);
  o.Set("freeMemory", d.free_memory);
  o.Set("totalMemory", d.total_memory);
#else
  o.Set("compiled", false);
  o.Set("available", false);
  o.Set("deviceCount", 0);
  o.Set("message", "this build has no CUDA backend (nvcc was not found at install time, or SAE_CUDA=OFF)");
#endif
  return o;
}

Napi::Value set_threads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  long long n = count_arg(env, info[0], "threads", 1);
  if (n > 1024) throw_js(env, "ERR_ARG", "threads must be <= 1024");
  set_num_threads(static_cast<int>(n));
  return Napi::Number::New(env, num_threads());
}

Napi::Value set_simd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) throw_js(env, "ERR_ARG", "simd level must be 'scalar', 'avx2' or 'avx512'");
  SimdLevel level;
  if (!parse_simd_level(info[0].As<Napi::String>().Utf8Value(), &level))
    throw_js(env, "ERR_ARG", "simd level must be 'scalar', 'avx2' or 'avx512'");
  return Napi::String::New(env, simd_level_name(set_simd_level(level)));
}

Napi::Value set_encode_path(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* what = "encode path must be 'auto', 'fp32', 'avx512-bf16' or 'amx-bf16'";
  if (!info[0].IsString()) throw_js(env, "ERR_ARG", what);
  const std::string mode = info[0].As<Napi::String>().Utf8Value();
  const SetEncodeMode r = set_encode_mode(mode);
  if (r == SetEncodeMode::UnknownName) throw_js(env, "ERR_ARG", what);
  if (r == SetEncodeMode::Unavailable)
    throw_js(env, "ERR_UNSUPPORTED",
             "encode path '" + mode + "' needs " + (mode == "amx-bf16" ? "AMX-BF16 tiles" : "AVX-512-BF16") +
                 " and the avx512 SIMD level, which this process does not have; use 'auto' or 'fp32'");
  return Napi::String::New(env, encode_mode());
}

Napi::Value encode_stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const EncodeCounters c = encode_counters();
  Napi::Object o = Napi::Object::New(env);
  o.Set("certifiedRows", static_cast<double>(c.certified_rows));
  o.Set("fallbackRows", static_cast<double>(c.fallback_rows));
  o.Set("candidates", static_cast<double>(c.candidates));
  o.Set("auxCandidates", static_cast<double>(c.aux_candidates));
  return o;
}

// The native bytes V8 currently counts as external memory (what SAEs and accumulators reported on create,
// minus what they reported on free).
Napi::Value reported_external_memory(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(Napi::MemoryManagement::AdjustExternalMemory(info.Env(), 0)));
}

Napi::Value set_error_class(const Napi::CallbackInfo& info) {
  if (!info[0].IsFunction()) throw_js(info.Env(), "ERR_ARG", "setErrorClass needs a constructor");
  register_error_class(info.Env(), info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

}  // namespace

Napi::Object init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  env.SetInstanceData<AddonData>(data);
#if defined(CMSAE_WITH_CUDA)
  set_device_sae_factory(&cuda::create_device_sae, &cuda::create_device_rows);
  set_device_corr_factory(&cuda::create_device_corr);
  set_device_lap_factory(&cuda::create_device_lap);
#endif
  if (emulating_cuda()) register_emulated_devices();  // tests of the device paths without a GPU
  Napi::Function sae = NativeSae::define(env);
  data->sae_ctor = Napi::Persistent(sae);
  exports.Set("NativeSae", sae);
  Napi::Function rows = NativeDeviceRows::define(env);
  data->rows_ctor = Napi::Persistent(rows);
  exports.Set("NativeDeviceRows", rows);
  Napi::Function corr = NativeCorr::define(env);
  data->corr_ctor = Napi::Persistent(corr);
  exports.Set("NativeCorr", corr);
  Napi::Function codes = NativeCodes::define(env);
  data->codes_ctor = Napi::Persistent(codes);
  exports.Set("NativeCodes", codes);
  register_lap_functions(env, exports);
  register_sae_functions(env, exports);
  register_synth_functions(env, exports);
  register_eval_functions(env, exports);
  register_concepts_functions(env, exports);
  exports.Set("buildInfo", Napi::Function::New(env, build_info));
  exports.Set("cudaInfo", Napi::Function::New(env, cuda_info));
  exports.Set("setThreads", Napi::Function::New(env, set_threads));
  exports.Set("setSimdLevel", Napi::Function::New(env, set_simd));
  exports.Set("setEncodePath", Napi::Function::New(env, set_encode_path));
  exports.Set("encodeStats", Napi::Function::New(env, encode_stats));
  exports.Set("setErrorClass", Napi::Function::New(env, set_error_class));
  exports.Set("reportedExternalMemory", Napi::Function::New(env, reported_external_memory));
  return exports;
}

}  // namespace cmsae::binding

static Napi::Object InitCmsae(Napi::Env env, Napi::Object exports) { return cmsae::binding::init(env, exports); }
NODE_API_MODULE(cmsae, InitCmsae)
