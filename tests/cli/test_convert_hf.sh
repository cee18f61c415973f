#!/usr/bin/env bash
# tandem convert on Hugging Face folders (tests/golden/fixtures/hf): every
# output type converts and runs; the first greedy token is transformers'
# argmax; the converted tokenizer gives the `tokenizers` ids; --tokenizer
# picks another tokenizer file; and broken folders (missing or malformed
# config, unsupported architecture, truncated or mis-shaped tensors, an
# unsupported dtype, a missing tokenizer or shard) fail with one line naming
# the file and the problem, a non-zero exit and no partial output.
set -u
cd "$(dirname "$0")/../.."
. tests/cli/lib.sh
CLI_ONE_LINE_ERRORS=1
H=tests/golden/fixtures/hf
no_output() { [ ! -e "$1" ] && [ ! -e "$1.tmp" ]; }
expected() { # folder, python expression over the fixture's expected.json (e)
    python3 -c "import json,sys; e=json.load(open(sys.argv[1])); print($2)" "$H/$1/expected.json"
}

for m in llama llama-sharded qwen2; do
    for t in f32 f16 bf16 q8_0 q4_0 q4_1; do
        check "$m -> $t" $T convert "$H/$m" --type $t -o "$tmp/$m-$t.gguf"
    done
    prompt=$(expected $m "' '.join(map(str, e['cases'][0]['ids']))")
    want=$(expected $m "max(range(len(r := e['cases'][0]['logits'][-1])), key=r.__getitem__)")
    got=$($T run -m "$tmp/$m-f32.gguf" --ids "$prompt" -n 1 --ignore-eos --json 2>/dev/null |
          python3 -c "import json,sys; print(json.load(sys.stdin)['ids'][0])")
    check "$m: first greedy token is transformers' argmax ($want)" test "$got" = "$want"
    n=$($T run -m "$tmp/$m-q4_0.gguf" --ids "$prompt" -n 4 --ignore-eos --json 2>/dev/null |
        python3 -c "import json,sys; print(len(json.load(sys.stdin)['ids']))")
    check "$m: q4_0 runs" test "${n:-0}" = 4
    text=$(expected $m "e['tokenizer']['texts'][-1]['text']")
    want=$(expected $m "' '.join(map(str, e['tokenizer']['texts'][-1]['ids']))")
    got=$($T tokenize -m "$tmp/$m-f32.gguf" --no-bos --special -- "$text" | tr -s ' \n' ' ' | sed 's/^ //; s/ $//')
    check "$m: tandem tokenize gives tokenizers' ids" test "$got" = "$want"
done
$T tokenize -m "$tmp/qwen2-f32.gguf" --info | grep -q "chat:       chatml"
check "qwen2: chat template recognised" test $? -eq 0
$T convert "$H/qwen2" -o "$tmp/default.gguf"
# The same bytes as --type f16 (convert is deterministic), and not as f32 or bf16.
check "default type is f16" cmp -s "$tmp/default.gguf" "$tmp/qwen2-f16.gguf"
check "default type is not f32 or bf16" sh -c '! cmp -s "$1" "$2" && ! cmp -s "$1" "$3"' _ \
    "$tmp/default.gguf" "$tmp/qwen2-f32.gguf" "$tmp/qwen2-bf16.gguf"

# --tokenizer: the Llama fixture's tokenizer.json given explicitly
check "--tokenizer tokenizer.json" $T convert "$H/llama" --tokenizer "$H/llama/tokenizer.json" -o "$tmp/explicit.gguf"
check "--tokenizer gives the same file" cmp -s "$tmp/explicit.gguf" "$tmp/llama-f16.gguf"

# Broken folders: a copy of the Qwen2 fixture, one thing changed at a time
broken() { rm -rf "$tmp/b"; cp -r "$H/qwen2" "$tmp/b"; }
out="$tmp/x.gguf"
broken; rm "$tmp/b/config.json"
expect_error "no config.json" "b/config.json: No such file or directory" $T convert "$tmp/b" -o "$out"
broken; sed -i 's/Qwen2ForCausalLM/MistralForCausalLM/' "$tmp/b/config.json"
expect_error "unsupported architecture" "architecture 'MistralForCausalLM' is not supported" $T convert "$tmp/b" -o "$out"
broken; sed -i 's/"hidden_size": 64/"hidden_size": "64"/' "$tmp/b/config.json"
expect_error "malformed config" "'hidden_size' is not an integer" $T convert "$tmp/b" -o "$out"
broken; sed -i 's/"intermediate_size": 96/"intermediate_size": 128/' "$tmp/b/config.json"
expect_error "shape mismatch" "b/model.safetensors: tensor 'model.layers.0.mlp.gate_proj.weight' has shape [96, 64], config.json implies [128, 64]" \
    $T convert "$tmp/b" -o "$out"
broken; sed -i 's/"num_hidden_layers": 2/"num_hidden_layers": 1/' "$tmp/b/config.json"
expect_error "tensor the config does not have" "'model.layers.1.input_layernorm.weight' is not part of a Qwen2ForCausalLM model" \
    $T convert "$tmp/b" -o "$out"
broken; head -c 100000 "$H/qwen2/model.safetensors" > "$tmp/b/model.safetensors"
expect_error "truncated safetensors" "model.safetensors: tensor" $T convert "$tmp/b" -o "$out"
broken; sed -i '0,/"BF16"/s//"I32" /' "$tmp/b/model.safetensors" # same length: the header stays valid
expect_error "unsupported dtype" "dtype 'I32' is not supported (F32, F16, BF16)" $T convert "$tmp/b" -o "$out"
broken; rm "$tmp/b/model.safetensors"
expect_error "no weights" "neither model.safetensors nor model.safetensors.index.json found" $T convert "$tmp/b" -o "$out"
broken; rm "$tmp/b/tokenizer.json"
expect_error "no tokenizer" "neither tokenizer.json nor tokenizer.model found (give one with --tokenizer)" \
    $T convert "$tmp/b" -o "$out"
broken; printf '{"model": {"type": "WordPiece"}}' > "$tmp/b/tokenizer.json"
expect_error "unsupported tokenizer" "model type 'WordPiece' is not supported (BPE)" $T convert "$tmp/b" -o "$out"
expect_error "--tokenizer missing" "none.json: No such file or directory (--tokenizer)" \
    $T convert "$H/qwen2" --tokenizer "$tmp/none.json" -o "$out"
rm -rf "$tmp/b"; cp -r "$H/llama-sharded" "$tmp/b"; rm "$tmp/b/model-00002-of-00003.safetensors"
expect_error "missing shard" "model-00002-of-00003.safetensors: No such file or directory" $T convert "$tmp/b" -o "$out"
check "no partial file after failed converts" no_output "$out"

[ $fails -eq 0 ]
