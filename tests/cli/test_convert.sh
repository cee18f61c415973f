#!/usr/bin/env bash
# tandem convert from the command line: help, the input kind found from the
# file itself, GGUF -> GGUF at every type (runnable, same greedy ids at the
# same type, peak memory about one tensor), stories260K -> GGUF runs like
# llama2.c's run.c and is the file llama.cpp's fixture ran (when
# ../shared/data is there), the progress bar only on a terminal, and clear
# errors with a non-zero exit and no partial output on bad input.
set -u
cd "$(dirname "$0")/../.."
. tests/cli/lib.sh
CLI_ONE_LINE_ERRORS=1
S=../shared/data/models/stories260K
no_output() { [ ! -e "$1" ] && [ ! -e "$1.tmp" ]; }
ids() { $T run -m "$1" --ids "$2" -n "$3" --ignore-eos --json 2>/dev/null |
        python3 -c "import json,sys; print(' '.join(map(str, json.load(sys.stdin)['ids'])))"; }

check "convert --help" bash -c "$T convert --help | grep -q 'usage: tandem convert INPUT'"
check "tandem --help lists convert" bash -c "$T --help | grep -q '^  convert '"

# GGUF in: without --type every tensor keeps its type; then every type
check "synth a q8_0 model" $T synth --preset tiny --type q8_0 --seed 5 -o "$tmp/m.gguf"
err=$($T convert "$tmp/m.gguf" -o "$tmp/same.gguf" 2>&1); rc=$?
check "GGUF -> GGUF, no --type" test $rc -eq 0
check "quiet when stderr is not a terminal" test -z "$err"
a=$(ids "$tmp/m.gguf" "1 5 9" 16)
check "same greedy ids after a same-type convert" test "$a" = "$(ids "$tmp/same.gguf" "1 5 9" 16)"
for t in f32 f16 bf16 q8_0 q4_0 q4_1; do
    $T convert "$tmp/m.gguf" --type $t -o "$tmp/$t.gguf" &&
        n=$($T run -m "$tmp/$t.gguf" --ids "1 5 9" -n 8 --ignore-eos --json 2>/dev/null |
            python3 -c "import json,sys; print(len(json.load(sys.stdin)['ids']))")
    check "GGUF -> $t runs" test "${n:-0}" = 8
done
check "q8_0 -> q8_0 keeps the greedy ids" test "$a" = "$(ids "$tmp/q8_0.gguf" "1 5 9" 16)"

# Streaming: inputs are mapped, and each tensor's pages are handed back once
# it is written, so about one tensor is resident whatever the model's size
if [ -x /usr/bin/time ]; then
    $T synth --layers 8 --dim 768 --heads 12 --ffn 3072 --vocab 4000 --type f32 -o "$tmp/big.gguf" 2>/dev/null
    quarter_kb=$(( $(stat -c %s "$tmp/big.gguf") / 4096 ))
    for t in f32 q4_0; do
        rss=$( { /usr/bin/time -f %M $T convert "$tmp/big.gguf" --type $t -o "$tmp/big_$t.gguf" --quiet; } 2>&1 )
        check "peak RSS converting a $((quarter_kb / 256)) MB model to $t: $rss KB, under a quarter of it" \
            test "$rss" -lt "$quarter_kb"
        rm -f "$tmp/big_$t.gguf"
    done
    rm -f "$tmp/big.gguf"
fi

# The bar is drawn on a terminal (script gives the command a pty)
if command -v script >/dev/null; then
    out=$(script -qec "$T convert $tmp/m.gguf --type f16 -o $tmp/tty.gguf" /dev/null)
    check "progress bar on a terminal" grep -q "convert: \[#" <<<"$out"
    out=$(script -qec "$T convert $tmp/m.gguf --type f16 -o $tmp/tty.gguf --quiet" /dev/null)
    check "--quiet: no bar on a terminal" test -z "$out"
fi

# llama2.c in: stories260K runs as llama2.c's run.c ran it
if [ -f "$S/stories260K.bin" ]; then
    check "stories260K -> f32" $T convert "$S/stories260K.bin" --tokenizer "$S/tok512.bin" --type f32 -o "$tmp/s.gguf"
    prompt=$(head -n 1 "$S/greedy_once_upon_a_time.ids" | cut -d: -f2)
    want=$(tail -n +2 "$S/greedy_once_upon_a_time.ids" | tr '\n' ' ' | sed 's/ *$//')
    n=$(( 256 - $(wc -w <<<"$prompt") + 1 ))
    got=$(ids "$tmp/s.gguf" "$prompt" $n | sed 's/\(^\| \)1\( .*\)\?$//') # run.c stops at BOS
    check "stories260K greedy ids equal run.c's" test "$got" = "$want"
    check "stories260K tokenizer: the prompt's ids" test \
        "$($T tokenize -m "$tmp/s.gguf" "Once upon a time" | tr -s ' \n' ' ' | sed 's/^ //; s/ $//')" = "$(echo $prompt)"
    # the bytes llama.cpp ran when tests/golden/make_stories260k_reference.py
    # made its fixture (rerun it if the converter's output changes on purpose)
    $T convert "$tmp/s.gguf" --type q8_0 -o "$tmp/s8.gguf"
    for c in f32:s q8_0:s8; do
        want=$(python3 -c "import json,sys; print(next(x['sha256'] for x in json.load(open(sys.argv[1]))['cases'] if x['name'] == sys.argv[2]))" \
               tests/golden/fixtures/stories260k_llama_cpp.json "${c%%:*}")
        check "stories260K ${c%%:*}: the file llama.cpp ran" test "$(sha256sum < "$tmp/${c#*:}.gguf" | cut -d' ' -f1)" = "$want"
    done
    head -c 100000 "$S/stories260K.bin" > "$tmp/trunc.bin"
    expect_error "truncated llama2.c checkpoint" "truncated" $T convert "$tmp/trunc.bin" -o "$tmp/t.gguf"
    check "no partial file after a truncated checkpoint" no_output "$tmp/t.gguf"
    { cat "$S/tok512.bin"; printf '\0\0\0\0\1\0\0\0x'; } > "$tmp/tok513.bin"
    expect_error "tokenizer of another vocabulary size" "a tokenizer for another model" \
        $T convert "$S/stories260K.bin" --tokenizer "$tmp/tok513.bin" -o "$tmp/t.gguf"
    check "no partial file after a bad tokenizer" no_output "$tmp/t.gguf"
else
    echo "skip stories260K ($S not present)"
fi

# Bad input
expect_error "missing input" "nope.bin: No such file or directory" $T convert "$tmp/nope.bin" -o "$tmp/x.gguf"
expect_error "no -o" "need one INPUT and -o OUT.gguf" $T convert "$tmp/m.gguf"
expect_error "two inputs" "more than one input" $T convert "$tmp/m.gguf" "$tmp/m.gguf" -o "$tmp/x.gguf"
expect_error "bad --type" "--type: 'q5_9'" $T convert "$tmp/m.gguf" --type q5_9 -o "$tmp/x.gguf"
expect_error "--tokenizer with a GGUF input" "keeps its tokenizer" $T convert "$tmp/m.gguf" --tokenizer x -o "$tmp/x.gguf"
head -c 2000 "$tmp/m.gguf" > "$tmp/trunc.gguf"
expect_error "truncated GGUF" "trunc.gguf" $T convert "$tmp/trunc.gguf" -o "$tmp/x.gguf"
printf 'not a model at all, just text\n' > "$tmp/text.bin"
expect_error "not a llama2.c checkpoint" "llama2.c header" $T convert "$tmp/text.bin" -o "$tmp/x.gguf"
expect_error "output directory missing" "No such file or directory" $T convert "$tmp/m.gguf" --type q4_0 -o "$tmp/no/dir/x.gguf"
check "no partial file after failed converts" no_output "$tmp/x.gguf"
mkdir "$tmp/empty_dir"
$T convert "$tmp/empty_dir" -o "$tmp/x.gguf" 2>/dev/null
check "a folder without a model fails" test $? -eq 1
check "no partial file after a failed folder convert" no_output "$tmp/x.gguf"

[ $fails -eq 0 ]
