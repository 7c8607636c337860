#!/usr/bin/env bash
# Builds and runs peak.cc (the instruction-rate microbenchmark) with the host's g++; prints its table.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
g++ -O2 -std=c++17 -Wno-psabi "$here/peak.cc" -o "$out/peak"
"$out/peak"
