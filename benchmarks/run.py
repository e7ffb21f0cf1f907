"""Training-step benchmark: tinygraph against hand-written numpy BPTT and PyTorch.

    python -m benchmarks.run                 # full grid (about 7 minutes on 2 cores)
    python -m benchmarks.run --grid smoke    # tiny grid, seconds (used by the smoke test)
    python -m benchmarks.run --markdown docs/benchmark.json   # the README's tables of a saved run

One step = forward over T steps + BPTT + SGD, softmax cross-entropy on every step, one-hot inputs
(T, B, V). Implementations: tinygraph (rnn_models layer + linear_cross_entropy head), numpy_per_step (b),
numpy_batched (c), torch_loop (d), torch_nn (e) — each measured in its own process, rounds
interleaved across implementations, thread counts and allocator setting the same for all, medians
over all timed steps after warm-up.
Prints a table of median ms with ratios to (b) and (c) and writes JSON.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

from tinygraph.io import write_bytes_atomic

from .baselines import CELLS, DTYPES, available_impls

GRIDS = {
    "full": [(1, 32, 16, 25), (32, 128, 64, 50), (64, 512, 128, 100), (1, 16, 8, 1000)],
    "smoke": [(2, 8, 5, 6)],
}
MEMORY_POINT = {"full": (32, 128, 64, 2000), "smoke": (2, 8, 5, 40)}
IMPLS = ("tinygraph", "numpy_per_step", "numpy_batched", "torch_loop", "torch_nn")


def measure(spec, threads, default_malloc=False):
    """Run one worker. Every worker gets the same thread count and, unless ``default_malloc``, the
    same allocator setting (``keep_freed_memory``: glibc keeps freed memory instead of page-faulting
    it in again every step)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    spec = dict(spec, keep_freed_memory=not default_malloc)
    result = subprocess.run([sys.executable, "-m", "benchmarks.worker", json.dumps(spec)], env=env,
                            capture_output=True, text=True, cwd=os.path.dirname(os.path.dirname(
                                os.path.abspath(__file__))))
    if result.returncode != 0:
        raise RuntimeError(f"benchmark worker failed for {spec}:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def budget(B, H, V, T):
    """(warm-up steps, timed steps per round) so each round takes roughly a second at most.

    Two warm-up steps: a fresh process's heap reaches its steady state only after the second step of
    an implementation that allocates per step (measured at (64, 512, 128, 100): tinygraph's second
    step took 1.07x its third), and every implementation gets the same.
    """
    work = B * H * (H + V) * T
    steps = max(2, min(20, int(2e8 / max(work, 1))))
    return 2, steps


def run(grid, rounds, threads, cells, dtypes, impls, default_malloc=False, points=None, memory=True,
        log=print):
    rows = []
    for cell in cells:
        for dtype in dtypes:
            for B, H, V, T in points or GRIDS[grid]:
                warmup, steps = budget(B, H, V, T)
                times = {impl: [] for impl in impls}
                for _ in range(rounds):  # interleaved: every impl once per round
                    for impl in impls:
                        spec = dict(impl=impl, cell=cell, dtype=dtype, B=B, H=H, V=V, T=T, seed=0,
                                    warmup=warmup, steps=steps)
                        times[impl] += measure(spec, threads, default_malloc)["ms"]
                row = dict(cell=cell, dtype=dtype, B=B, H=H, V=V, T=T,
                           ms={impl: statistics.median(t) for impl, t in times.items()})
                rows.append(row)
                log(format_row(row))
    peaks = []
    B, H, V, T = MEMORY_POINT[grid]
    for cell in (cells if memory else ()):
        entry = dict(cell=cell, dtype="float64", B=B, H=H, V=V, T=T, peak_mb={})
        for impl in [i for i in impls if i in ("tinygraph", "numpy_per_step", "numpy_batched")]:
            spec = dict(impl=impl, cell=cell, dtype="float64", B=B, H=H, V=V, T=T, seed=0, memory=True)
            entry["peak_mb"][impl] = measure(spec, threads, default_malloc)["peak_bytes"] / 2**20
        peaks.append(entry)
        log(format_memory(entry))
    return {"threads": threads, "rounds": rounds, "keep_freed_memory": not default_malloc,
            "rows": rows, "memory": peaks}


def format_row(row):
    ms = row["ms"]
    parts = [f"{row['cell']:4s} {row['dtype']:7s} B={row['B']:<3d} H={row['H']:<4d} V={row['V']:<4d} "
             f"T={row['T']:<5d}"]
    for impl, value in ms.items():
        parts.append(f"{impl}={value:9.3f}ms")
    tg_ms = ms.get("tinygraph")
    if tg_ms is not None:
        for base in ("numpy_per_step", "numpy_batched", "torch_loop"):
            if base in ms:
                parts.append(f"tg/{base}={tg_ms / ms[base]:.2f}")
    return "  ".join(parts)


def format_memory(entry):
    mb = entry["peak_mb"]
    text = "  ".join(f"{impl}={value:8.1f}MB" for impl, value in mb.items())
    ratio = f"  tg/numpy_per_step={mb['tinygraph'] / mb['numpy_per_step']:.2f}" \
        if "tinygraph" in mb and "numpy_per_step" in mb else ""
    return (f"peak step memory {entry['cell']} B={entry['B']} H={entry['H']} V={entry['V']} "
            f"T={entry['T']}: {text}{ratio}")


IMPL_COLUMNS = (("tinygraph", "tinygraph"), ("numpy_per_step", "(b) numpy per-step"),
                ("numpy_batched", "(c) numpy batched"), ("torch_loop", "(d) torch loop"),
                ("torch_nn", "(e) torch.nn"))
RATIOS = (("numpy_per_step", "tg/(b)"), ("numpy_batched", "tg/(c)"), ("torch_loop", "tg/(d)"))


def markdown(result):
    """The README's tables (median ms per step, peak MB) from a result dict."""
    def row(cells):
        return "| " + " | ".join(cells) + " |"

    def ms_text(value):
        return f"{value:.0f}" if value >= 100 else f"{value:.3g}"
    rows = result["rows"]
    impls = [(key, title) for key, title in IMPL_COLUMNS if rows and key in rows[0]["ms"]]
    ratios = [(key, title) for key, title in RATIOS if rows and key in rows[0]["ms"]]
    head = ["cell", "dtype", "(B, H, V, T)"] + [t for _, t in impls] + [t for _, t in ratios]
    lines = [row(head), row(["---"] * len(head))]
    for r in rows:
        ms = r["ms"]
        lines.append(row([r["cell"], r["dtype"], f"({r['B']}, {r['H']}, {r['V']}, {r['T']})"]
                         + [ms_text(ms[k]) for k, _ in impls]
                         + [f"{ms['tinygraph'] / ms[k]:.2f}" for k, _ in ratios]))
    if result["memory"]:
        mem_impls = [(k, t) for k, t in impls if k in result["memory"][0]["peak_mb"]]
        lines += ["", row(["cell"] + [t for _, t in mem_impls] + ["tg/(b)"]),
                  row(["---"] * (len(mem_impls) + 2))]
        for entry in result["memory"]:
            mb = entry["peak_mb"]
            lines.append(row([entry["cell"]] + [f"{mb[k]:.0f} MB" for k, _ in mem_impls]
                             + [f"{mb['tinygraph'] / mb['numpy_per_step']:.2f}"]))
    return "\n".join(lines)


def parse_points(text):
    """'B,H,V,T;B,H,V,T' -> [(B, H, V, T), ...] of positive ints, else an argparse error."""
    points = []
    for part in text.split(";"):
        try:
            point = tuple(int(n) for n in part.split(","))
        except ValueError:
            point = ()
        if len(point) != 4 or min(point) < 1:
            raise argparse.ArgumentTypeError(
                f"each point is four positive integers B,H,V,T (points separated by ';'), got {part!r}")
        points.append(point)
    return points


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--grid", choices=sorted(GRIDS), default="full")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="BLAS/torch threads (pinned)")
    parser.add_argument("--cells", default=",".join(CELLS))
    parser.add_argument("--dtypes", default=",".join(DTYPES))
    parser.add_argument("--impls", default=None, help="comma list (default: all available)")
    parser.add_argument("--points", type=parse_points, default=None,
                        help="(B,H,V,T) points instead of the grid's, e.g. '32,128,64,50;1,16,8,1000'")
    parser.add_argument("--default-malloc", action="store_true",
                        help="run the workers with glibc's default allocator settings")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    parser.add_argument("--json", default="benchmarks/results/latest.json")
    parser.add_argument("--markdown", metavar="JSON", default=None,
                        help="print the tables of an earlier run as Markdown (runs nothing)")
    args = parser.parse_args(argv)
    if args.markdown:
        with open(args.markdown) as file:
            print(markdown(json.load(file)))
        return 0
    impls = [i for i in (args.impls.split(",") if args.impls else IMPLS)
             if i == "tinygraph" or i in available_impls()]
    result = run(args.grid, args.rounds, args.threads, args.cells.split(","), args.dtypes.split(","),
                 impls, args.default_malloc, args.points, memory=not args.no_memory)
    write_bytes_atomic(args.json, json.dumps(result, indent=1))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
