#!/usr/bin/env bash
# The GPU check in one script (<= 8 minutes on an H200): build with CUDA, run the CUDA parity tests, run the
# GPU benchmarks, and write bench/out/gpu-report.json (+ gpu-parity.json, the mocha JSON of the parity tests).
# Needs node_modules (npm install, or carried to the machine) and nvcc; copies the reports to $OUT when set.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/out
t0=$(date +%s)
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
echo "== build (CUDA)"
SAE_CUDA=ON node scripts/install.mjs > bench/out/gpu-build.log 2>&1 || { tail -40 bench/out/gpu-build.log; exit 1; }
grep -E "flavor|cuda" <(node -e "const b=require('./build/Release/cmsae.node');console.log(JSON.stringify({...b.buildInfo(),cuda:b.cudaInfo()}))")
echo "== parity tests"
npx mocha --no-config --node-option import=tsx --timeout 600000 --reporter json --reporter-option output=bench/out/gpu-parity.json test/cuda/parity.test.ts > bench/out/gpu-parity.out 2>&1
parity=$?
node -e "const r=require('./bench/out/gpu-parity.json');console.log('parity:',r.stats.passes,'passed,',r.stats.failures,'failed,',r.stats.pending,'pending');for(const f of r.failures)console.log(' FAIL',f.fullTitle,'\n   ',String(f.err.message).split('\n')[0])"
echo "== benchmarks"
timeout 360 npx tsx bench/gpu-bench.ts --out bench/out/gpu-report.json ${GPU_BENCH_ARGS:-}
bench=$?
echo "== done in $(( $(date +%s) - t0 )) s (parity exit $parity, bench exit $bench)"
if [ -n "${OUT:-}" ]; then cp bench/out/gpu-report.json bench/out/gpu-parity.json bench/out/gpu-build.log "$OUT"/ 2>/dev/null; fi
exit $(( parity != 0 || bench != 0 ))
