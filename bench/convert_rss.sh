#!/usr/bin/env bash
# Streaming check for `tandem convert` on a Hugging Face folder (issue 4: a
# llama2-7b-shaped checkpoint converts with peak RSS under 1.5 GB).
#
# Writes a random-weight LlamaForCausalLM checkpoint at Llama-2-7B's shape
# (4096 hidden, 11008 FFN, 32 layers, 32 heads, vocab 32000; BF16, ~13.5 GB
# in two shards with model.safetensors.index.json, as meta-llama ships it)
# straight in the safetensors format with NumPy, a tensor at a time, then
# converts it to q8_0 under /usr/bin/time -v and records peak RSS, wall time
# and MB/s (checkpoint bytes / wall time) in bench/results/convert/.
# The tokenizer is Llama-2's tokenizer.model from ../shared/data.
#
#   bash bench/convert_rss.sh [WORK_DIR]     (default build/bench/hf-7b)
#   CONVERT_LAYERS=8 bash bench/convert_rss.sh   fewer layers when disk is short
#
# Needs about 21 GB free (checkpoint + output); both are deleted at the end.
set -eu
cd "$(dirname "$0")/.."
work=${1:-build/bench/hf-7b}
layers=${CONVERT_LAYERS:-32}
tok=../shared/data/tokenizers/llama2/tokenizer.model
out=bench/results/convert
[ -f "$tok" ] || { echo "convert_rss: $tok not found" >&2; exit 1; }
make -s bin/tandem
mkdir -p "$work" "$out"
trap 'rm -rf "$work"' EXIT

python3 - "$work" "$layers" <<'PY'
import json, os, struct, sys
import numpy as np

work, layers = sys.argv[1], int(sys.argv[2])
D, F, V, H = 4096, 11008, 32000, 32
json.dump({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": D,
           "intermediate_size": F, "num_hidden_layers": layers, "num_attention_heads": H,
           "num_key_value_heads": H, "vocab_size": V, "max_position_embeddings": 4096,
           "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "hidden_act": "silu",
           "tie_word_embeddings": False, "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "bfloat16"},
          open(os.path.join(work, "config.json"), "w"))
tensors = [("model.embed_tokens.weight", [V, D])]
for l in range(layers):
    p = f"model.layers.{l}."
    tensors += [(p + "input_layernorm.weight", [D]), (p + "self_attn.q_proj.weight", [D, D]),
                (p + "self_attn.k_proj.weight", [D, D]), (p + "self_attn.v_proj.weight", [D, D]),
                (p + "self_attn.o_proj.weight", [D, D]), (p + "post_attention_layernorm.weight", [D]),
                (p + "mlp.gate_proj.weight", [F, D]), (p + "mlp.up_proj.weight", [F, D]),
                (p + "mlp.down_proj.weight", [D, F])]
tensors += [("model.norm.weight", [D]), ("lm_head.weight", [V, D])]
half = len(tensors) // 2
shards = [tensors[:half], tensors[half:]]
rng = np.random.default_rng(1)
weight_map = {}
for i, part in enumerate(shards):
    name = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
    header, pos = {"__metadata__": {"format": "pt"}}, 0
    for t, shape in part:
        n = 2 * int(np.prod(shape))
        header[t] = {"dtype": "BF16", "shape": shape, "data_offsets": [pos, pos + n]}
        pos += n
        weight_map[t] = name
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(os.path.join(work, name), "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for t, shape in part:
            left = int(np.prod(shape))
            while left:
                n = min(left, 1 << 24)
                if len(shape) == 1:  # norms near 1
                    bits = np.full(n, 0x3F80, dtype=np.uint16)
                else:  # bf16 of magnitude 2^-9 .. 2^-4, either sign
                    bits = rng.integers(0x3B00, 0x3D80, size=n, dtype=np.uint16)
                    bits |= (rng.integers(0, 2, size=n, dtype=np.uint16) << 15)
                f.write(bits.tobytes())
                left -= n
    print(f"wrote {name}: {os.path.getsize(os.path.join(work, name)) / 1e9:.2f} GB", flush=True)
json.dump({"metadata": {}, "weight_map": weight_map},
          open(os.path.join(work, "model.safetensors.index.json"), "w"))
PY
cp "$tok" "$work/tokenizer.model"

bytes=$(cat "$work"/*.safetensors | wc -c)
sync
echo "convert_rss: converting $(awk "BEGIN {printf \"%.2f\", $bytes / 1e9}") GB to q8_0"
/usr/bin/time -v bin/tandem convert "$work" --type q8_0 --quiet -o "$work/out.gguf" 2> "$work/time.txt"
rss_kb=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$work/time.txt")
wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$work/time.txt")
secs=$(awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s }' <<<"$wall")
out_bytes=$(stat -c %s "$work/out.gguf")
cpu=$(sed -n 's/.*Percent of CPU this job got: //p' "$work/time.txt")

{
    echo "# Converting a Llama-2-7B-shaped Hugging Face checkpoint to q8_0"
    echo
    echo "| layers | checkpoint (BF16) | output (q8_0) | peak RSS | wall | MB/s (checkpoint bytes / wall) | CPU |"
    echo "|---|---|---|---|---|---|---|"
    awk -v l="$layers" -v b="$bytes" -v o="$out_bytes" -v r="$rss_kb" -v s="$secs" -v c="$cpu" 'BEGIN {
        printf "| %d | %.2f GB | %.2f GB | %.0f MB | %.0f s | %.0f | %s |\n", l, b / 1e9, o / 1e9, r / 1024, s, b / 1e6 / s, c }'
    echo
    echo "Made by \`bash bench/convert_rss.sh\` (CONVERT_LAYERS=$layers) on $(date -u +%Y-%m-%d):"
    echo "$(uname -m), $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB RAM (a shared machine, so times are noisy)."
    echo "Random BF16 weights in two shards with model.safetensors.index.json, Llama-2's"
    echo "tokenizer.model; measured: \`/usr/bin/time -v bin/tandem convert DIR --type q8_0 --quiet -o OUT\`"
    echo "(peak RSS = \"Maximum resident set size\", which counts the mapped checkpoint pages"
    echo "that are resident; the reader hands them back as each tensor is done)."
    echo "The checkpoint was written just before, so much of it was still in the page"
    echo "cache: MB/s is the converter's rate (read, convert, quantize, write), not the disk's."
} > "$out/README.md"
cat "$out/README.md"
