"""Turns bench/results/engine-cpu/results.json into a markdown table."""
import json
import sys

rows = json.load(open(sys.argv[1]))
print("# CPU engine speed\n")
print("| shape | type | GB read/token | read GB/s | decode tok/s | roofline | "
      "llama.cpp tok/s | ours ÷ llama.cpp | k=5 pass ÷ 1-row |")
print("|---|---|---|---|---|---|---|---|---|")
for r in rows:
    o = r["ours"]
    k5 = next(p["ratio_to_1row"] for p in o["verify_passes"] if p["k"] == 5)
    lb = r["llama_bench_decode_tok_s"]
    ratio = f"{o['decode_tok_s'] / lb:.2f}" if lb else "not run"
    lbs = f"{lb:.1f}" if lb else "not run"
    print(f"| {r['shape']} | {r['type']} | {o['weight_gb_per_token']:.3f} | "
          f"{o['read_bandwidth_gbs']:.1f} | {o['decode_tok_s']:.1f} | "
          f"{o['roofline_fraction']:.2f} | {lbs} | {ratio} | {k5:.2f} |")
print("\nVerify-pass cost (median ms of a k-row pass, ratio to the 1-row pass):\n")
print("| shape | type | " + " | ".join(f"k={k}" for k in range(1, 9)) + " |")
print("|---|---|" + "---|" * 8)
for r in rows:
    ps = r["ours"]["verify_passes"]
    print(f"| {r['shape']} | {r['type']} | " +
          " | ".join(f"{p['median_ms']:.1f} ({p['ratio_to_1row']:.2f})" for p in ps) + " |")
rounded = [r for r in rows if len(r.get("rounds", [])) > 1]
if rounded:
    print("\nDecode tok/s in each round (ours, then llama-bench, run in alternation; "
          "the table reports the round with our median rate against llama-bench's median):\n")
    for r in rounded:
        cells = []
        for x in r["rounds"]:
            lb = x["llama_bench_decode_tok_s"]
            cells.append(f"{x['ours']['decode_tok_s']:.1f} / " + (f"{lb:.1f}" if lb else "not run"))
        print(f"- {r['shape']} {r['type']}: " + "; ".join(cells))
