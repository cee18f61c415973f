#!/usr/bin/env bash
# tandem tokenize / detokenize from the command line: help, known ids for the
# committed Llama-2 and SmolLM2 vocabularies, round trips through both
# commands (stdin and files included), and clear errors on bad input.
set -u
cd "$(dirname "$0")/../.."
. tests/cli/lib.sh
L=tests/tokenizer/llama2-vocab.gguf
S=tests/tokenizer/smollm2-mini.gguf
# same "description, want, got" everywhere
eq() {
    if [ "$2" = "$3" ]; then echo "ok   $1"; else echo "FAIL $1: want '$2', got '$3'"; fails=$((fails + 1)); fi
}

for c in tokenize detokenize; do
    $T $c --help | grep -q "usage: tandem $c"; eq "$c --help" 0 $?
done

# ids as Hugging Face gives them (tests/tokenizer/expected-*.jsonl)
eq "llama2 ids" "1 15043 3186 29892 372 29915 29879 29871 29906 29900 29906 29946 29991" \
    "$($T tokenize -m $L "Hello world, it's 2024!")"
eq "llama2 --no-bos" "15043 3186" "$($T tokenize -m $L --no-bos "Hello world")"
eq "llama2 <s> as text" "1 529 29879 29958" "$($T tokenize -m $L "<s>")"
eq "llama2 <s> --special" "1 1" "$($T tokenize -m $L --special "<s>")"
eq "smollm2-mini ids" "56 478 95 905" "$($T tokenize -m $S "Hello world")"
eq "smollm2-mini --bos" "1 56 478 95 905" "$($T tokenize -m $S --bos "Hello world")"
eq "smollm2-mini <|im_start|> as text" "44 108 306 79 302 434 108 46" "$($T tokenize -m $S "<|im_start|>")"
eq "smollm2-mini --special" "1" "$($T tokenize -m $S --special "<|im_start|>")"
eq "--count" "3" "$($T tokenize -m $L --count "Hello world")"
eq "--pieces" "$(printf '1\t<s>\n15043\t\xe2\x96\x81Hello\n13\t<0x0A>')" \
    "$($T tokenize -m $L --pieces "Hello
")"
$T tokenize -m $S --info | grep -q "chat:       chatml"; eq "--info names the chat format" 0 $?

# round trips, with newlines, tabs and multi-byte characters
text=$(printf 'Tabs\tand\nnew lines, caf\xc3\xa9, \xe6\x97\xa5\xe6\x9c\xac, \xf0\x9f\x98\x80 and  two  spaces.')
printf '%s' "$text" > "$tmp/in.txt"
for m in $L $S; do
    name=$(basename $m .gguf)
    ids=$($T tokenize -m $m -f "$tmp/in.txt")
    eq "$name round trip (arguments)" "$text" "$($T detokenize -m $m -n $ids)"
    eq "$name round trip (stdin)" "$text" "$(echo "$ids" | $T detokenize -m $m -n)"
    eq "$name -f - reads stdin" "$ids" "$($T tokenize -m $m -f - < "$tmp/in.txt")"
done
eq "detokenize hides control tokens" "Hello" "$($T detokenize -m $L 1 15043 2)"
eq "detokenize --special shows them" "<s> Hello</s>" "$($T detokenize -m $L --special 1 15043 2)"
$T tokenize -m $L --count --time -f "$tmp/in.txt" 2>&1 >/dev/null | grep -q "tokens in"; eq "--time reports" 0 $?

# tandem run --chat: the prompt as SmolLM2's template renders one user message
if $T synth --preset tiny --tokenizer-from $S -o "$tmp/chat.gguf" >/dev/null 2>&1; then
    printf '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n' > "$tmp/chat.txt"
    want=$($T tokenize -m $S --special -f "$tmp/chat.txt" | tr ' ' ,)
    got=$($T run -m "$tmp/chat.gguf" -p hi --chat -n 1 --json 2>/dev/null |
          python3 -c 'import json,sys; print(",".join(map(str, json.load(sys.stdin)["prompt_ids"])))')
    eq "run --chat prompt ids" "$want" "$got"
    got=$($T run -m "$tmp/chat.gguf" -p hi --chat=vicuna -n 1 --json 2>/dev/null |
          python3 -c 'import json,sys; print(len(json.load(sys.stdin)["prompt_ids"]) > 20)')
    eq "run --chat=vicuna" "True" "$got"
    expect_error "run --chat=bogus" "unknown format 'bogus'" $T run -m "$tmp/chat.gguf" -p hi --chat=bogus
else
    echo "FAIL tandem synth --tokenizer-from"; fails=$((fails + 1))
fi

expect_error "missing model" "nope.gguf" $T tokenize -m "$tmp/nope.gguf" "x"
expect_error "no -m" "-m MODEL.gguf is required" $T tokenize "x"
expect_error "no text" "no text" $T tokenize -m $L
expect_error "text and file" "not both" $T tokenize -m $L -f "$tmp/in.txt" "x"
expect_error "unreadable file" "nope.txt" $T tokenize -m $L -f "$tmp/nope.txt"
expect_error "id out of range" "'32000' is not an integer in [0, 31999]" $T detokenize -m $L 1 32000
expect_error "id not a number" "'abc'" $T detokenize -m $L 1 abc
printf 'GGUF\3\0\0\0' > "$tmp/bad.gguf"
expect_error "not a model" "bad.gguf" $T tokenize -m "$tmp/bad.gguf" "x"
# a GGUF without a tokenizer
python3 - "$tmp/notok.gguf" <<'PY' 2>/dev/null && expect_error "no tokenizer" "tokenizer.ggml.model missing" $T tokenize -m "$tmp/notok.gguf" "x"
import sys, gguf
w = gguf.GGUFWriter(sys.argv[1], "llama"); w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
PY

[ $fails -eq 0 ]
