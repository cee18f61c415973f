#!/usr/bin/env bash
# Builds llama.cpp's llama-bench from the llama-cpp-python sdist on PyPI into
# build/llama.cpp/ (git-ignored; nothing of it is committed), for side-by-side
# speed comparisons in `make bench`. CPU only, same compiler flags as llama.cpp's
# defaults (native). Takes several minutes on 2 cores.
set -eu
cd "$(dirname "$0")/.."
dest=build/llama.cpp
[ -x "$dest/bin/llama-bench" ] && { echo "llama-bench already built: $dest/bin/llama-bench"; exit 0; }
src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT
echo "build-llama-bench: fetching the llama-cpp-python sdist"
pip download --quiet --no-deps --no-binary :all: llama-cpp-python -d "$src"
tar -xzf "$src"/llama_cpp_python-*.tar.gz -C "$src"
root=$(echo "$src"/llama_cpp_python-*/vendor/llama.cpp)
echo "build-llama-bench: building $(basename "$(dirname "$(dirname "$root")")")"
cmake -S "$root" -B "$src/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
      -DBUILD_SHARED_LIBS=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF > "$src/cmake.log"
cmake --build "$src/build" --target llama-bench -j "$(nproc)" > "$src/build.log"
mkdir -p "$dest/bin"
cp "$src"/build/bin/llama-bench "$dest/bin/"
basename "$(dirname "$(dirname "$root")")" > "$dest/VERSION"
echo "build-llama-bench: $dest/bin/llama-bench"
