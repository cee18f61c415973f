#!/usr/bin/env bash
# tandem synth / run from the command line: help, JSON output, determinism,
# and clear errors with a non-zero exit on bad input.
set -u
cd "$(dirname "$0")/../.."
. tests/cli/lib.sh

for c in run synth; do check "$c --help" $T $c --help; done
check "tandem --help" $T --help

check "synth tiny q4_1" $T synth --preset tiny --type q4_1 --seed 3 -o "$tmp/m.gguf"
check "synth qwen2 f16 tied" $T synth --preset tiny --arch qwen2 --tied --type f16 -o "$tmp/q.gguf"

json=$($T run -m "$tmp/m.gguf" --ids "1 5 9" -n 12 --ignore-eos --json 2>/dev/null)
check "run --json has 12 ids" python3 -c "import json,sys; o=json.loads(sys.argv[1]); assert len(o['ids'])==12 and o['prompt_ids']==[1,5,9] and o['decode_tok_s']>0 and o['peak_rss_mb']>0" "$json"
a=$($T run -m "$tmp/q.gguf" --ids "1 2 3" -n 16 --temp 0.9 --top-k 20 --seed 7 --ignore-eos --json 2>/dev/null | python3 -c "import json,sys; print(json.load(sys.stdin)['ids'])")
b=$($T run -m "$tmp/q.gguf" --ids "1 2 3" -n 16 --temp 0.9 --top-k 20 --seed 7 --ignore-eos --json --threads 1 2>/dev/null | python3 -c "import json,sys; print(json.load(sys.stdin)['ids'])")
check "same seed, same sample (1 vs 2 threads)" test "$a" = "$b"

# Q8_0 weights repacked at load (the default) or left mapped: the same tokens.
check "synth tiny q8_0" $T synth --preset tiny --type q8_0 --seed 5 -o "$tmp/q8.gguf"
a=$($T run -m "$tmp/q8.gguf" --ids "1 2 3" -n 24 --ignore-eos --json 2>/dev/null | python3 -c "import json,sys; print(json.load(sys.stdin)['ids'])")
b=$($T run -m "$tmp/q8.gguf" --ids "1 2 3" -n 24 --ignore-eos --json --no-repack 2>/dev/null | python3 -c "import json,sys; print(json.load(sys.stdin)['ids'])")
check "repacked and mapped q8_0: same ids" test -n "$a" -a "$a" = "$b"

expect_error "missing model file" "nope.gguf" $T run -m "$tmp/nope.gguf" --ids "1" -n 1
head -c 1000 "$tmp/m.gguf" > "$tmp/trunc.gguf"
expect_error "truncated model" "trunc.gguf" $T run -m "$tmp/trunc.gguf" --ids "1" -n 1
printf 'GGUF\x03\x00\x00\x00' > "$tmp/short.gguf"
expect_error "8-byte model" "short.gguf" $T run -m "$tmp/short.gguf" --ids "1" -n 1
expect_error "token id outside vocabulary" "outside the vocabulary" $T run -m "$tmp/m.gguf" --ids "1 99999" -n 1
expect_error "context overflow" "exceed the context" $T run -m "$tmp/m.gguf" --ids "1 2" -n 10 --ctx 8
expect_error "bad --temp" "--temp" $T run -m "$tmp/m.gguf" --ids "1" --temp abc
expect_error "bad --type" "--type" $T synth --type q5_9 -o "$tmp/x.gguf"
expect_error "synth without -o" "-o OUT.gguf is required" $T synth
expect_error "quantized dims" "multiples of 32" $T synth --dim 48 --heads 4 --type q8_0 -o "$tmp/x.gguf"
check "no partial file after failed synth" test ! -e "$tmp/x.gguf" -a ! -e "$tmp/x.gguf.tmp"
expect_error "unknown command" "unknown command" $T frobnicate

[ $fails -eq 0 ]
