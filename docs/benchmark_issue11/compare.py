"""Before/after the first-class-models change: three full benchmark runs each, interleaved
(old_k.json at commit 7676261, new_k.json at the merge of the engine branches), tinygraph and the
numpy baselines (b), (c) only, one thread, 3 rounds; `python docs/benchmark_issue11/compare.py`
prints the median ratios (all three runs for the B=1 points) and the peak-memory ratios.
Run on the project's 2-core machine (Intel Xeon, OpenBLAS 0.3.31 Haswell kernels via scipy-openblas).
"""
import json, glob, statistics as st
def load(kind):
    return [json.load(open(f)) for f in sorted(glob.glob(f"docs/benchmark_issue11/{kind}_*.json"))]
old, new = load("old"), load("new")
print(f"runs: old {len(old)}, new {len(new)}")
keys = [(r["cell"], r["dtype"], r["B"], r["H"], r["V"], r["T"]) for r in old[0]["rows"]]
def ratios(runs, key, base):
    out = []
    for run in runs:
        for r in run["rows"]:
            if (r["cell"], r["dtype"], r["B"], r["H"], r["V"], r["T"]) == key:
                out.append(r["ms"]["tinygraph"] / r["ms"][base])
    return out
print("| cell | dtype | (B, H, V, T) | tg/(b) old | tg/(b) new | change | tg/(c) old | tg/(c) new | change |")
print("|---|---|---|---|---|---|---|---|---|")
for key in keys:
    cells = []
    for base in ("numpy_per_step", "numpy_batched"):
        o, n = ratios(old, key, base), ratios(new, key, base)
        if not n:
            cells += ["-", "-", "-"]; continue
        mo, mn = st.median(o), st.median(n)
        small = key[2] == 1
        fmt = (lambda xs: "/".join(f"{x:.2f}" for x in xs)) if small else (lambda xs: f"{st.median(xs):.2f}")
        cells += [fmt(o), fmt(n), f"{(mn/mo-1)*100:+.0f}%"]
    print(f"| {key[0]} | {key[1]} | {key[2:]} | " + " | ".join(cells) + " |")
for kind, runs in (("old", old), ("new", new)):
    for cell in ("rnn", "lstm"):
        vals = [m["peak_mb"]["tinygraph"] / m["peak_mb"]["numpy_per_step"] for run in runs for m in run["memory"] if m["cell"] == cell]
        mbs = [m["peak_mb"]["tinygraph"] for run in runs for m in run["memory"] if m["cell"] == cell]
        print(kind, cell, "peak tg/(b):", [f"{v:.2f}" for v in vals], "MB:", [f"{v:.0f}" for v in mbs])
