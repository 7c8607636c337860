#!/usr/bin/env bash
# The GPU check in one script (about 8 minutes on an H200 machine with 16 cores):
#  1. build with CUDA;
#  2. the whole test suite (what `npm test` runs) with the device present, mocha in parallel: the CPU tests stay
#     pinned to the CPU (test/root-hooks.ts), the CUDA parity tests (test/cuda/parity.test.ts) run on the device;
#     bench/gpu-suite-check.mjs fails the check on any failure, or when no parity test ran on a device (none passed,
#     or one is pending, or there is no usable device);
#  3. the GPU benchmarks (bench/gpu-bench.ts) in the time left.
# Writes bench/out/gpu-report.json, gpu-suite.json (mocha JSON), gpu-build.log and gpu-suite.out; copies them to
# $OUT when set. Needs node_modules (npm install, or carried to the machine) and nvcc. Exit 0 only when the build,
# the suite check and the benchmarks all succeeded.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/out
t0=$(date +%s)
budget=${GPU_CHECK_BUDGET_S:-480}
elapsed() { echo $(( $(date +%s) - t0 )); }
unset CMSAE_EMULATE_CUDA CMSAE_DEVICE CMSAE_NATIVE_BINDING  # the real device, the default build
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
cores=$(nproc 2>/dev/null || echo 4)

echo "== build (CUDA)"
SAE_CUDA=ON CMAKE_BUILD_PARALLEL_LEVEL=$cores node scripts/install.mjs > bench/out/gpu-build.log 2>&1 || { tail -40 bench/out/gpu-build.log; exit 1; }
device=$(node -e "const b=require('./build/Release/cmsae.node');const c=b.cudaInfo();console.error(JSON.stringify({...b.buildInfo(),cuda:c}));console.log(c.compiled&&c.available&&!c.emulated?'real':'none')")
echo "device: $device ($(elapsed) s)"

echo "== whole suite with the device present"
jobs=$(( cores / 2 > 8 ? 8 : (cores / 2 < 1 ? 1 : cores / 2) ))
suite_limit=$(( budget - $(elapsed) - 120 ))  # leave at least 2 minutes for the benchmarks
[ "$suite_limit" -lt 120 ] && suite_limit=120
rm -f bench/out/gpu-suite.json
npx tsc -p tsconfig.json > bench/out/gpu-suite.out 2>&1 || { cat bench/out/gpu-suite.out; echo "typecheck failed"; exit 1; }
timeout "$suite_limit" npx mocha --parallel --jobs "$jobs" --reporter json --reporter-option output=bench/out/gpu-suite.json >> bench/out/gpu-suite.out 2>&1
suite_rc=$?
[ "$suite_rc" -ge 124 ] && echo "the suite did not finish within $suite_limit s"
node bench/gpu-suite-check.mjs bench/out/gpu-suite.json "$device"
check=$?
[ "$suite_rc" -ne 0 ] && check=1
echo "(suite done at $(elapsed) s)"

echo "== benchmarks"
bench=2
if [ "$device" = real ]; then
  bench_limit=$(( budget - $(elapsed) ))
  [ "$bench_limit" -lt 120 ] && bench_limit=120
  timeout "$bench_limit" npx tsx bench/gpu-bench.ts --out bench/out/gpu-report.json ${GPU_BENCH_ARGS:-}
  bench=$?
else
  echo "skipped: no CUDA device"
fi
echo "== done in $(elapsed) s (suite check exit $check, bench exit $bench)"
if [ -n "${OUT:-}" ]; then cp bench/out/gpu-report.json bench/out/gpu-suite.json bench/out/gpu-suite.out bench/out/gpu-build.log "$OUT"/ 2>/dev/null; fi
exit $(( check != 0 || bench != 0 ))
