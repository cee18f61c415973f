#!/usr/bin/env python3
"""Tables, plots and the validation of `tandem sim` for bench/e2e.sh.

Reads the runs (one `tandem edge --json` object per line, with rtt, gamma,
prompt and trace path added) and the traces, and writes to OUT:
  results.json   every aggregate below, and the validation rows
  README.md      the command, the conditions, the tables
  latency_vs_rtt.png, speedup_vs_gamma.png

Validation: pass costs are fitted from the traces of these very runs (the
cloud's prefill and verify spans by rows, separately for passes with early
exits; the edge's edge-ar passes), then `tandem sim` predicts every run from
its mode, round trip and recorded rounds; the table compares its total time
with the measured wall time.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys


def parse_ms(s):
    s = s.strip().lower()
    for unit, scale in (("ms", 1.0), ("us", 1e-3), ("s", 1e3)):
        if s.endswith(unit):
            return float(s[: -len(unit)]) * scale
    return float(s)


def load_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def percentile(values, q):
    if not values:
        return None
    v = sorted(values)
    k = (len(v) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def spans(events, side=None):
    """(name, round, begin_us, end_us) of B/E pairs, in order."""
    open_, out = {}, []
    for e in events:
        if side and e["side"] != side:
            continue
        key = (e["session"], e["round"], e["ev"])
        if e["ph"] == "B":
            open_[key] = e["t_us"]
        elif e["ph"] == "E" and key in open_:
            out.append((e["ev"], e["round"], e["session"], open_.pop(key), e["t_us"]))
    return out


DECODE_ROWS = 16  # engine/pace.h PACE_DECODE_ROWS


def features(rows, ctx):
    """engine/pace.h's cost model, linear in its coefficients:
    base, per_row, prefill_per_row, per_ctx_row."""
    decode = min(rows, DECODE_ROWS)
    return [1.0, decode - 1.0, rows - decode, rows * (ctx + (rows - 1) / 2.0)]


COEFS = ("base_ms", "per_row_ms", "prefill_per_row_ms", "per_ctx_row_ms")


def fit_profile(points):
    """Least squares over (rows, ctx, ms) passes, every coefficient >= 0 (a
    negative one is dropped and the rest refitted)."""
    import numpy as np
    X = np.array([features(r, c) for r, c, _ in points])
    y = np.array([ms for _, _, ms in points])
    active = [j for j in range(X.shape[1]) if X[:, j].any()]
    while True:
        coef, *_ = np.linalg.lstsq(X[:, active], y, rcond=None)
        if (coef >= 0).all():
            break
        active = [j for j, c in zip(active, coef) if c >= 0]
    full = dict.fromkeys(COEFS, 0.0)
    for j, c in zip(active, coef):
        full[COEFS[j]] = float(c)
    return full


def run_window(run, edge_events):
    t0 = edge_events[0]["t_us"]
    return t0, t0 + int(run["wall_s"] * 1e6) + 50_000


def cloud_passes(sev):
    """(kind, rows, ctx, ms, round) of one cloud session's passes, with the
    context each ran at rebuilt from the prompt and the verdicts."""
    gamma = {e["round"]: e["v"] for e in sev if e["ev"] == "recv_draft"}
    accepted = {e["round"]: e["v"] for e in sev if e["ev"] == "send_final"}
    prompt = next((e["v"] for e in sev if e["ev"] == "prompt"), None)
    if prompt is None:
        return []
    out, ctx = [], prompt - 1
    for name, rnd, _, b, e in spans(sev):
        ms = (e - b) / 1e3
        if name == "prefill" and prompt > 1:
            out.append(("prefill", prompt - 1, 0, ms, rnd))
        elif name == "verify":
            g = gamma.get(rnd, 0)
            out.append(("verify", g + 1, ctx, ms, rnd))
            ctx += accepted.get(rnd, 0) + 1
    return out


def fit_costs(runs, cloud_events, work):
    """Profiles fitted from the traces: edge (edge-ar passes), cloud without
    exits (cloud-ar, cloud-ar-rpc, sd) and with exits (sd-ee)."""
    cloud_plain, cloud_ee, edge_pts, exit_fracs = [], [], [], []
    by_session = {}
    for e in cloud_events:
        by_session.setdefault(e["session"], []).append(e)
    sessions = sorted(by_session.items(), key=lambda kv: kv[1][0]["t_us"])
    for run in runs:
        ev = load_jsonl(run["edge_trace"])
        lo, hi = run_window(run, ev)
        if run["mode"] == "edge-ar":
            prompt = len(run["prompt_ids"])
            for k, (_, _, _, b, e) in enumerate(spans(ev, "edge")):
                rows, ctx = (prompt, 0) if k == 0 else (1, prompt + k - 1)
                edge_pts.append((rows, ctx, (e - b) / 1e3))
            continue
        for sid, sev in sessions:
            if not (lo <= sev[0]["t_us"] <= hi):
                continue
            early = {e["round"]: e["t_us"] for e in sev if e["ev"] == "send_early"}
            target = cloud_ee if run["mode"] == "sd-ee" else cloud_plain
            for kind, rows, ctx, ms, rnd in cloud_passes(sev):
                target.append((rows, ctx, ms))
            for name, rnd, _, b, e in spans(sev):
                if name == "verify" and rnd in early and e > b:
                    exit_fracs.append((early[rnd] - b) / (e - b))
    os.makedirs(os.path.join(work, "fit"), exist_ok=True)
    profiles = {}
    for name, pts in (("edge", edge_pts), ("cloud", cloud_plain), ("cloud-ee", cloud_ee or cloud_plain)):
        if not pts:
            continue
        prof = {"device": "this machine (fitted from traces)", "model": name, "per_ctx_ms": 0.0}
        prof.update(fit_profile(pts))
        prof["points"] = len(pts)
        path = os.path.join(work, "fit", name + ".json")
        with open(path, "w") as f:
            json.dump(prof, f)
        profiles[name] = (path, prof)
    frac = statistics.median(exit_fracs) if exit_fracs else 0.5
    return profiles, frac


def predict(run, profiles, exit_fraction, tandem):
    mode = run["mode"]
    cloud = profiles["cloud-ee" if mode == "sd-ee" else "cloud"][0]
    cmd = [tandem, "sim", "--edge-profile", profiles["edge"][0], "--cloud-profile", cloud,
           "--rtt", run["rtt"], "--modes", mode, "--exit-fraction", str(exit_fraction), "--json"]
    if mode in ("sd", "sd-ee"):
        cmd += ["--rounds", run["edge_trace"]]
    else:
        cmd += ["--tokens", str(len(run["ids"])), "--prompt-len", str(len(run["prompt_ids"]))]
    out = json.loads(subprocess.check_output(cmd))
    return out["results"][0]["total_ms"]


def aggregate(runs):
    groups = {}
    for r in runs:
        groups.setdefault((r["rtt"], r["mode"], r["gamma"]), []).append(r)
    rows = []
    for (rtt, mode, gamma), rs in sorted(groups.items(), key=lambda kv: (parse_ms(kv[0][0]), kv[0][1], kv[0][2])):
        itl = []
        for r in rs:
            t = r["token_ms"]
            itl += [b - a for a, b in zip(t, t[1:])]
        tokens = sum(len(r["ids"]) for r in rs)
        wall_ms = sum(r["wall_s"] * 1e3 for r in rs)
        rounds = sum(r["rounds"] for r in rs)
        passes = {"cloud-ar": tokens, "edge-ar": 0}.get(mode, rounds)
        rows.append({
            "rtt": rtt, "rtt_ms": parse_ms(rtt), "mode": mode, "gamma": gamma, "runs": len(rs),
            "tokens": tokens,
            "ms_per_token": wall_ms / tokens,
            "itl_p50_ms": percentile(itl, 0.5), "itl_p99_ms": percentile(itl, 0.99),
            "ttft_ms": statistics.fmean(r["ttft_ms"] for r in rs),
            "tokens_per_s": tokens / (wall_ms / 1e3),
            "tau": (tokens / rounds) if rounds and mode in ("sd", "sd-ee") else None,
            "early_hit_rate": (sum(r["early_hits"] for r in rs) / rounds) if mode == "sd-ee" and rounds else None,
            "target_passes_per_token": passes / tokens,
            "cloud_busy_ms_per_token": sum(r["cloud_busy_ms"] for r in rs) / tokens,
            "edge_busy_ms_per_token": sum(r["edge_draft_ms"] for r in rs) / tokens,
            "emulated": any(r.get("emulated") for r in rs),
        })
    base = {(r["rtt"], r["mode"]): r["ms_per_token"] for r in rows if r["mode"] in ("cloud-ar", "cloud-ar-rpc")}
    for r in rows:
        for b in ("cloud-ar", "cloud-ar-rpc"):
            ref = base.get((r["rtt"], b))
            r["speedup_vs_" + b.replace("-", "_")] = ref / r["ms_per_token"] if ref else None
    return rows


def fmt(v, spec=".2f"):
    return "–" if v is None else format(v, spec)


def plots(rows, out):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("e2e_report: matplotlib missing; no plots", file=sys.stderr)
        return []
    made = []
    gammas = sorted({r["gamma"] for r in rows if r["mode"] in ("sd", "sd-ee")})
    g_main = 4 if 4 in gammas else (gammas[0] if gammas else 0)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for mode in ("cloud-ar", "cloud-ar-rpc", "edge-ar", "sd", "sd-ee"):
        pts = sorted((r["rtt_ms"], r["ms_per_token"]) for r in rows
                     if r["mode"] == mode and r["gamma"] in (0, g_main))
        if pts:
            ax.plot(*zip(*pts), marker="o", label=mode + (f" (γ={g_main})" if mode in ("sd", "sd-ee") else ""))
    ax.set_xlabel("round-trip time (ms)")
    ax.set_ylabel("ms per token")
    ax.set_title("Per-token latency vs RTT")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out, "latency_vs_rtt.png"), dpi=110)
    made.append("latency_vs_rtt.png")
    if len(gammas) > 1:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for rtt in sorted({r["rtt"] for r in rows}, key=parse_ms):
            for mode in ("sd", "sd-ee"):
                pts = sorted((r["gamma"], r["speedup_vs_cloud_ar"]) for r in rows
                             if r["mode"] == mode and r["rtt"] == rtt and r["speedup_vs_cloud_ar"])
                if pts:
                    ax.plot(*zip(*pts), marker="o", label=f"{mode}, rtt {rtt}")
        ax.axhline(1.0, color="gray", lw=0.8)
        ax.set_xlabel("γ (draft tokens per round)")
        ax.set_ylabel("speedup vs cloud-ar")
        ax.set_title("Speedup vs γ")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(os.path.join(out, "speedup_vs_gamma.png"), dpi=110)
        made.append("speedup_vs_gamma.png")
    return made


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--config", required=True)
    ap.add_argument("--command", required=True)
    ap.add_argument("--tandem", default="bin/tandem")
    a = ap.parse_args()

    runs = load_jsonl(a.runs)
    rows = aggregate(runs)
    cloud_events = load_jsonl(os.path.join(a.work, "traces", "cloud.jsonl"))
    profiles, exit_fraction = fit_costs(runs, cloud_events, a.work)

    validation = []
    if "edge" in profiles and "cloud" in profiles:
        groups = {}
        for r in runs:
            pred = predict(r, profiles, exit_fraction, a.tandem)
            groups.setdefault((r["rtt"], r["mode"], r["gamma"]), []).append((r["wall_s"] * 1e3, pred))
        for (rtt, mode, gamma), pairs in sorted(groups.items(), key=lambda kv: (parse_ms(kv[0][0]), kv[0][1], kv[0][2])):
            meas = statistics.fmean(m for m, _ in pairs)
            pred = statistics.fmean(p for _, p in pairs)
            validation.append({"rtt": rtt, "mode": mode, "gamma": gamma, "runs": len(pairs),
                               "measured_ms": meas, "predicted_ms": pred,
                               "error": (pred - meas) / meas})
    links = {}
    for rtt in sorted({r["rtt"] for r in runs}, key=parse_ms):
        path = os.path.join(a.work, f"link-{rtt}.json")
        if os.path.exists(path) and os.path.getsize(path):
            links[rtt] = json.load(open(path))

    os.makedirs(a.out, exist_ok=True)
    pngs = plots(rows, a.out)
    json.dump({"config": open(a.config).read(), "command": a.command, "rows": rows,
               "fitted_profiles": {k: v[1] for k, v in profiles.items()}, "exit_fraction": exit_fraction,
               "validation": validation, "link": links},
              open(os.path.join(a.out, "results.json"), "w"), indent=1)

    emulated = any(r["emulated"] for r in rows)
    L = []
    L.append(f"# End-to-end: {os.path.basename(a.out)}" + (" (emulated devices)" if emulated else ""))
    L.append("")
    L.append(f"Made by `{a.command}` on {subprocess.check_output(['date', '-u', '+%Y-%m-%d']).decode().strip()}, "
             f"{os.cpu_count()} cores ({platform_cpu()}). Config:")
    L.append("")
    L.append("```")
    L.append(open(a.config).read().strip())
    L.append("```")
    L.append("")
    L.append("Edge, cloud and the WAN relay share this machine; each side has its own thread. "
             "Speedups are against **cloud-ar** (streaming, the round trip paid once) and "
             "**cloud-ar-rpc** (a request per token), measured in the same run.")
    L.append("")
    L.append("| rtt | mode | γ | runs | ms/token | ITL p50 | ITL p99 | TTFT ms | tok/s | τ | EARLY hit | "
             "target passes/tok | cloud ms/tok | edge ms/tok | × cloud-ar | × cloud-ar-rpc |")
    L.append("|" + "---|" * 16)
    for r in rows:
        L.append(f"| {r['rtt']} | {r['mode']} | {r['gamma'] or '–'} | {r['runs']} | {fmt(r['ms_per_token'])} | "
                 f"{fmt(r['itl_p50_ms'])} | {fmt(r['itl_p99_ms'])} | {fmt(r['ttft_ms'], '.1f')} | "
                 f"{fmt(r['tokens_per_s'], '.1f')} | {fmt(r['tau'])} | {fmt(r['early_hit_rate'])} | "
                 f"{fmt(r['target_passes_per_token'])} | {fmt(r['cloud_busy_ms_per_token'])} | "
                 f"{fmt(r['edge_busy_ms_per_token'])} | {fmt(r['speedup_vs_cloud_ar'])} | "
                 f"{fmt(r['speedup_vs_cloud_ar_rpc'])} |")
    L.append("")
    for p in pngs:
        L.append(f"![{p}]({p})")
        L.append("")
    if links:
        L.append("WAN relay's own added delay (after each message's scheduled time), per RTT: " +
                 "; ".join(f"{k}: up mean {v['up']['late_mean_ms']:.3f} ms (max {v['up']['late_max_ms']:.2f}), "
                           f"down mean {v['down']['late_mean_ms']:.3f} ms (max {v['down']['late_max_ms']:.2f})"
                           for k, v in links.items()) + ".")
        L.append("")
    if validation:
        L.append("## `tandem sim` against these runs")
        L.append("")
        L.append("Pass costs fitted from the traces by least squares over every pass (engine/pace.h's "
                 "model: base, per row up to 16 rows, per prefill row past 16, per row-position pair of "
                 "attention; the context of each pass rebuilt from the prompt and the verdicts): " +
                 "; ".join(f"{k}: base {v[1]['base_ms']:.3f}, per row {v[1]['per_row_ms']:.4f}, "
                           f"prefill per row {v[1]['prefill_per_row_ms']:.4f}, "
                           f"per row·position {v[1]['per_ctx_row_ms']:.6f} ({v[1]['points']} passes)"
                           for k, v in profiles.items()) +
                 f"; exit at {exit_fraction:.3f} of a verify pass. Each run is then predicted from its "
                 "mode, RTT and recorded rounds; mean total time per group:")
        L.append("")
        L.append("| rtt | mode | γ | runs | measured ms | predicted ms | error |")
        L.append("|---|---|---|---|---|---|---|")
        for v in validation:
            L.append(f"| {v['rtt']} | {v['mode']} | {v['gamma'] or '–'} | {v['runs']} | {v['measured_ms']:.1f} | "
                     f"{v['predicted_ms']:.1f} | {100 * v['error']:+.1f}% |")
        worst = max(abs(v["error"]) for v in validation)
        L.append("")
        L.append(f"Largest error: {100 * worst:.1f}% (goal: within 10% for every mode and RTT).")
        L.append("")
    open(os.path.join(a.out, "README.md"), "w").write("\n".join(L) + "\n")
    print("\n".join(L))


def platform_cpu():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    main()
