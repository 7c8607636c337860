{
  "targets": [
    {
      "target_name": "cmsae",
      "sources": [
        "native/binding/addon.cc",
        "native/binding/js_errors.cc",
        "native/binding/sae_wrap.cc",
        "native/binding/rows_wrap.cc",
        "native/common/cpu_features.cc",
        "native/common/thread_pool.cc",
        "native/sae/kernels.cc",
        "native/sae/kernels_scalar.cc",
        "native/sae/topk_select.cc",
        "native/sae/topk_encode.cc",
        "native/sae/decode.cc",
        "native/sae/backward.cc",
        "native/sae/model.cc",
        "native/sae/model_update.cc",
        "native/sae/update_guard.cc",
        "native/devices/registry.cc",
        "native/devices/emulated_devices.cc",
        "native/devices/emulated_sae.cc",
        "native/devices/emulated_corr.cc",
        "native/devices/emulated_lap.cc",
        "native/sae/pair_loss.cc",
        "native/binding/corr_wrap.cc",
        "native/corr/corr_accumulator.cc",
        "native/corr/corr_flush.cc",
        "native/corr/corr_pearson.cc",
        "native/corr/corr_format.cc",
        "native/lap/solver_policy.cc",
        "native/lap/dense_sap.cc",
        "native/lap/certify.cc",
        "native/lap/sparse_graph.cc",
        "native/lap/sparse_init.cc",
        "native/lap/sparse_augment.cc",
        "native/lap/candidate_pass.cc",
        "native/lap/pricing_pass.cc",
        "native/lap/sparse_certified.cc",
        "native/lap/scan_kernels_scalar.cc",
        "native/lap/align.cc",
        "native/synth/synth.cc",
        "native/binding/synth_wrap.cc",
        "native/binding/eval_wrap.cc",
        "native/binding/concepts_wrap.cc"
      ],
      "include_dirs": ["<!@(node -p \"require('node-addon-api').include\")", "native"],
      "dependencies": ["cmsae_avx2", "cmsae_avx512", "cmsae_eval"],
      "defines": [
        "NAPI_VERSION=9",
        "NODE_ADDON_API_CPP_EXCEPTIONS",
        "NODE_ADDON_API_CPP_EXCEPTIONS_ALL",
        "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS",
        "CMSAE_HAVE_X86_SIMD=1",
        "CMSAE_BUILD_FLAVOR=\"cpu\""
      ],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-std=c++17", "-O3", "-fexceptions", "-frtti", "-fopenmp-simd", "-fno-math-errno", "-fvisibility=hidden"]
    },
    {
      "target_name": "cmsae_eval",
      "type": "static_library",
      "sources": ["native/eval/retrieval.cc", "native/eval/ranking.cc", "native/eval/histogram.cc", "native/eval/concept_index.cc"],
      "include_dirs": ["native"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-std=c++17", "-O3", "-fPIC", "-fexceptions", "-frtti", "-fopenmp-simd", "-fno-math-errno", "-ffp-contract=off"]
    },
    {
      "target_name": "cmsae_avx2",
      "type": "static_library",
      "sources": ["native/sae/kernels_avx2.cc", "native/lap/scan_kernels_avx2.cc"],
      "include_dirs": ["native"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-std=c++17", "-O3", "-fPIC", "-mavx2", "-mfma", "-fopenmp-simd", "-fno-math-errno"]
    },
    {
      "target_name": "cmsae_avx512",
      "type": "static_library",
      "sources": ["native/sae/kernels_avx512.cc"],
      "include_dirs": ["native"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-std=c++17", "-O3", "-fPIC", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mfma", "-mavx2", "-fopenmp-simd", "-fno-math-errno"]
    }
  ]
}
