"""Turns bench/results/engine-cpu/results.json into a markdown table: one row
per model and way of holding the weights (repacked for the CPU, the default;
mapped from the file, --no-repack), each against the same llama-bench rounds."""
import json
import statistics
import sys

rows = json.load(open(sys.argv[1]))
WAYS = [("ours", "repacked"), ("mapped", "mapped")]


def runs(r):
    return [(label, r[key]) for key, label in WAYS if key in r]


print("# CPU engine speed\n")
print("| shape | type | weights | GB read/token | read GB/s (best probe) | decode tok/s | roofline | "
      "roofline, paired | llama.cpp tok/s | ours ÷ llama.cpp | k=5 pass ÷ 1-row | peak RSS MB |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
def round_ratios(r, key):
    """Our decode rate over llama-bench's, round by round (each pair ran
    back to back, so both saw the same spell of the machine)."""
    return [x[key]["decode_tok_s"] / x["llama_bench_decode_tok_s"]
            for x in r.get("rounds", []) if key in x and x["llama_bench_decode_tok_s"]]


for r in rows:
    lb = r["llama_bench_decode_tok_s"]
    for (key, _), (label, o) in zip(WAYS, runs(r)):
        k5 = next(p["ratio_to_1row"] for p in o["verify_passes"] if p["k"] == 5)
        rr = round_ratios(r, key)
        ratio = (f"{statistics.median(rr):.2f}" if rr else
                 f"{o['decode_tok_s'] / lb:.2f}" if lb else "not run")
        lbs = f"{lb:.1f}" if lb else "not run"
        rss = f"{o['peak_rss_mb']:.0f}" if "peak_rss_mb" in o else "-"
        paired = f"{o['roofline_fraction_paired']:.2f}" if "roofline_fraction_paired" in o else "-"
        print(f"| {r['shape']} | {r['type']} | {label} | {o['weight_gb_per_token']:.3f} | "
              f"{o['read_bandwidth_gbs']:.1f} | {o['decode_tok_s']:.1f} | "
              f"{o['roofline_fraction']:.2f} | {paired} | {lbs} | {ratio} | {k5:.2f} | {rss} |")
print("\nours ÷ llama.cpp: the median over rounds of each round's ratio (ours and "
      "llama-bench ran back to back in a round; rounds are listed below). "
      "roofline: median decode rate x GB read per token / the best bandwidth probe of the "
      "run; paired: the median over decode runs of each run's rate against the probe made "
      "just before it (this machine's memory speed moves by up to 2x within seconds). "
      "Peak RSS includes the benchmark's 1 GiB bandwidth-probe buffer.")
print("\nVerify-pass cost (median ms of a k-row pass, ratio to the 1-row pass):\n")
print("| shape | type | weights | " + " | ".join(f"k={k}" for k in range(1, 9)) + " |")
print("|---|---|---|" + "---|" * 8)
for r in rows:
    for label, o in runs(r):
        print(f"| {r['shape']} | {r['type']} | {label} | " +
              " | ".join(f"{p['median_ms']:.1f} ({p['ratio_to_1row']:.2f})" for p in o["verify_passes"]) + " |")
rounded = [r for r in rows if len(r.get("rounds", [])) > 1]
if rounded:
    print("\nDecode tok/s in each round (ours repacked, ours mapped, then llama-bench, run in "
          "alternation), and the round's ratios:\n")
    for r in rounded:
        cells = []
        for x in r["rounds"]:
            lb = x["llama_bench_decode_tok_s"]
            ours = " / ".join(f"{x[key]['decode_tok_s']:.1f}" for key, _ in WAYS if key in x)
            ratios = " / ".join(f"{x[key]['decode_tok_s'] / lb:.2f}" for key, _ in WAYS if key in x) if lb else ""
            cells.append(ours + " / " + (f"{lb:.1f} ({ratios})" if lb else "not run"))
        print(f"- {r['shape']} {r['type']}: " + "; ".join(cells))
