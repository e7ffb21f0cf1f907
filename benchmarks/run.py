"""Training-step benchmark: tinygraph against hand-written numpy BPTT, PyTorch and JAX.

    python -m benchmarks.run                 # full grid (about 7 minutes on 2 quiet cores, more with JAX)
    python -m benchmarks.run --grid smoke    # tiny grid, about a minute (the smoke tests use less)
    python -m benchmarks.run --markdown docs/benchmark.json   # the tables of a saved run
    python -m benchmarks.claims --readme README.md            # the README's section from its run

One step = forward over T steps + BPTT + SGD, softmax cross-entropy on every step, one-hot inputs
(T, B, V). Implementations (``IMPLS``): tinygraph eager (rnn_models layer + linear_cross_entropy head,
the graph built every step), tinygraph compiled (the same step through ``tg.compile``, when this
tinygraph has it), numpy_per_step (b), numpy_batched (c), torch_loop (d), torch_nn (e), and jax (f):
``jax.jit`` over ``lax.scan``, compile time reported apart. Those that cannot run here are skipped
with a one-line notice. Before anything is timed, each implementation's loss, gradients and two
training steps are checked against (b) in a worker of its own; a mismatch stops the run.

Each measurement runs in its own process, rounds interleaved across implementations; every process
gets the same thread settings (one BLAS/torch/XLA thread, and with one thread the process binds
itself to one CPU, which is what holds XLA to one core) and allocator setting; medians over all
timed steps after warm-up, each round at least half a second of steps (``ROUND_SECONDS``). The
result JSON also holds the machine (``benchmarks.machine``), the load average before and after, the
checks, and per implementation the CPU time / wall time of its timed steps (at most 1 when one core
did the work).
"""
import argparse
import datetime
import importlib.util
import json
import os
import statistics
import subprocess
import sys

from tinygraph.io import write_bytes_atomic

from .baselines import CELLS, DTYPES, TORCH_IMPLS

GRIDS = {
    "full": [(1, 32, 16, 25), (32, 128, 64, 50), (64, 512, 128, 100), (1, 16, 8, 1000)],
    "smoke": [(2, 8, 5, 6)],
}
MEMORY_POINT = {"full": (32, 128, 64, 2000), "smoke": (2, 8, 5, 40)}
IMPLS = ("tinygraph", "tinygraph_compiled", "numpy_per_step", "numpy_batched", "torch_loop",
         "torch_nn", "jax")
MEMORY_IMPLS = ("tinygraph", "tinygraph_compiled", "numpy_per_step", "numpy_batched")
# One XLA CPU thread, as far as flags go (jax 0.10 still runs two; the CPU binding does the rest).
XLA_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def unavailable(impl):
    """Why ``impl`` cannot run in this interpreter, or None if it can."""
    if impl not in IMPLS:
        return f"unknown implementation (expected one of {', '.join(IMPLS)})"
    if impl == "tinygraph_compiled":
        from .tinygraph_impl import compile_available
        return None if compile_available() else "tinygraph.compile does not exist in this version"
    if impl == "jax" and importlib.util.find_spec("jax") is None:
        return "jax is not installed (pip install -e '.[bench]')"
    if impl in TORCH_IMPLS and importlib.util.find_spec("torch") is None:
        return "torch is not installed (pip install -e '.[bench]')"
    return None


def worker_env(threads):
    """The environment every worker gets, whatever it runs."""
    return dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
                MKL_NUM_THREADS=str(threads), JAX_PLATFORMS="cpu",
                XLA_FLAGS=XLA_FLAGS if threads == 1 else os.environ.get("XLA_FLAGS", ""))


def measure(spec, threads, default_malloc=False):
    """Run one worker. Every worker gets the same thread count and, unless ``default_malloc``, the
    same allocator setting (``keep_freed_memory``: glibc keeps freed memory instead of page-faulting
    it in again every step); with one thread it binds itself to one CPU."""
    spec = dict(spec, keep_freed_memory=not default_malloc, pin=threads == 1)
    result = subprocess.run([sys.executable, "-m", "benchmarks.worker", json.dumps(spec)],
                            env=worker_env(threads), capture_output=True, text=True,
                            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if result.returncode != 0:
        raise RuntimeError(f"benchmark worker failed for {spec}:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def check_impls(impls, cells, dtypes, threads, log=print):
    """Each implementation other than (b) against (b), per cell and dtype; RuntimeError on a
    mismatch. Returns {impl: {"cell/dtype": differences}}."""
    checks = {}
    for impl in impls:
        if impl == "numpy_per_step":
            continue
        combos = [[cell, dtype] for cell in cells for dtype in dtypes]
        checks[impl] = measure(dict(impl=impl, seed=0, check=combos), threads)
        bad = {combo: out for combo, out in checks[impl].items() if not out["ok"]}
        if bad:
            raise RuntimeError(f"{impl} does not compute what (b) computes: {bad}")
        worst = max(max(v for k, v in out.items() if k in DIFFERENCES) for out in checks[impl].values())
        log(f"checked {impl} against (b): largest relative difference {worst:.1e}")
    return checks


DIFFERENCES = ("loss", "grads", "step_losses", "step_params")


# A round times at least ``budget``'s steps and at least ROUND_SECONDS of them (at most MAX_STEPS),
# after at least ten warm-up steps and WARMUP_SECONDS: this host's speed changes in phases of a few
# hundred ms (one process's B = 1 steps alternated between 44 and 85 ms), so a round of 20 steps of
# 0.25 ms, 5 ms in all, measured whichever phase it fell in, and two implementations' medians of 60
# such steps could differ by the phase alone (one row's (c) median: 18.2 ms in one run, 8.9 in the
# next). Rounds of half a second cover several phases, alike for every implementation.
ROUND_SECONDS = {"full": 0.5, "smoke": 0.0}
WARMUP_SECONDS = {"full": 0.2, "smoke": 0.0}
MAX_STEPS = 20000


def budget(B, H, V, T):
    """(warm-up steps, timed steps per round): at least this many, and in the full grid at least
    ``ROUND_SECONDS`` of them; a round of the largest points takes roughly a second.

    Ten warm-up steps, the same for every implementation: a fresh process's heap reaches its steady
    state only after the second step of an implementation that allocates per step (measured at
    (64, 512, 128, 100): tinygraph's second step took 1.07x its third), and CPython 3.11 specialises a
    function's bytecode only after it has run 8 times — a compiled replay is one function called once
    per step, so its first 8 replays run unspecialised (measured on the minimal gated unit at B = 1:
    replays 2-9 took 96-102 us per time step, later ones 70-75; ``benchmarks.mgu``).
    """
    work = B * H * (H + V) * T
    steps = max(2, min(20, int(2e8 / max(work, 1))))
    return 10, steps


def run(grid, rounds, threads, cells, dtypes, impls, default_malloc=False, points=None, memory=True,
        log=print):
    rows = []
    for cell in cells:
        for dtype in dtypes:
            for B, H, V, T in points or GRIDS[grid]:
                warmup, steps = budget(B, H, V, T)
                outs = {impl: [] for impl in impls}
                for _ in range(rounds):  # interleaved: every impl once per round
                    for impl in impls:
                        spec = dict(impl=impl, cell=cell, dtype=dtype, B=B, H=H, V=V, T=T, seed=0,
                                    warmup=warmup, steps=steps, seconds=ROUND_SECONDS[grid],
                                    warmup_seconds=WARMUP_SECONDS[grid], max_steps=MAX_STEPS)
                        outs[impl].append(measure(spec, threads, default_malloc))
                row = dict(cell=cell, dtype=dtype, B=B, H=H, V=V, T=T,
                           ms={i: statistics.median(t for o in outs[i] for t in o["ms"]) for i in impls},
                           # the best step of all rounds: interference (a neighbour's load, a slow
                           # phase of the host) only ever slows a step, so it is the least disturbed
                           best_ms={i: min(t for o in outs[i] for t in o["ms"]) for i in impls},
                           first_ms={i: statistics.median(o["first_ms"] for o in outs[i]) for i in impls},
                           cpu_over_wall={i: max(o["cpu_over_wall"] for o in outs[i]) for i in impls},
                           threads_working={i: max(o["threads_working"] for o in outs[i]) for i in impls},
                           cpus_allowed={i: max(o["cpus_allowed"] or 0 for o in outs[i]) for i in impls})
                compile_ms = {i: statistics.median(o["compile_ms"] for o in outs[i])
                              for i in impls if "compile_ms" in outs[i][0]}
                if compile_ms:
                    row["compile_ms"] = compile_ms
                rows.append(row)
                log(format_row(row))
    peaks = []
    B, H, V, T = MEMORY_POINT[grid]
    for cell in (cells if memory else ()):
        entry = dict(cell=cell, dtype="float64", B=B, H=H, V=V, T=T, peak_mb={})
        for impl in [i for i in impls if i in MEMORY_IMPLS]:
            spec = dict(impl=impl, cell=cell, dtype="float64", B=B, H=H, V=V, T=T, seed=0, memory=True)
            entry["peak_mb"][impl] = measure(spec, threads, default_malloc)["peak_bytes"] / 2**20
        peaks.append(entry)
        log(format_memory(entry))
    return {"threads": threads, "rounds": rounds, "round_seconds": ROUND_SECONDS[grid],
            "warmup_seconds": WARMUP_SECONDS[grid], "keep_freed_memory": not default_malloc,
            "pinned_to_one_cpu": threads == 1, "xla_flags": worker_env(threads)["XLA_FLAGS"],
            "rows": rows, "memory": peaks}


def format_row(row):
    ms = row["ms"]
    parts = [f"{row['cell']:4s} {row['dtype']:7s} B={row['B']:<3d} H={row['H']:<4d} V={row['V']:<4d} "
             f"T={row['T']:<5d}"]
    for impl, value in ms.items():
        parts.append(f"{impl}={value:9.3f}ms")
    if "numpy_batched" in ms:
        for impl in ms:
            if impl != "numpy_batched":
                parts.append(f"{impl}/(c)={ms[impl] / ms['numpy_batched']:.2f}")
    for impl, value in row.get("compile_ms", {}).items():
        parts.append(f"{impl} compile={value:.0f}ms")
    return "  ".join(parts)


def format_memory(entry):
    mb = entry["peak_mb"]
    text = "  ".join(f"{impl}={value:8.1f}MB" for impl, value in mb.items())
    ratio = f"  tg/numpy_per_step={mb['tinygraph'] / mb['numpy_per_step']:.2f}" \
        if "tinygraph" in mb and "numpy_per_step" in mb else ""
    return (f"peak step memory {entry['cell']} B={entry['B']} H={entry['H']} V={entry['V']} "
            f"T={entry['T']}: {text}{ratio}")


IMPL_COLUMNS = (("tinygraph", "tinygraph eager"), ("tinygraph_compiled", "tinygraph compiled"),
                ("numpy_per_step", "(b) numpy per-step"), ("numpy_batched", "(c) numpy batched"),
                ("torch_loop", "(d) torch loop"), ("torch_nn", "(e) torch.nn"),
                ("jax", "(f) JAX jit+scan"))
SHORT = {"tinygraph": "eager", "tinygraph_compiled": "compiled", "numpy_per_step": "(b)",
         "numpy_batched": "(c)", "torch_loop": "(d)", "torch_nn": "(e)", "jax": "(f)"}
# Ratios beyond "every implementation / (c)": (numerator, denominator).
PAIRS = (("tinygraph", "jax"), ("tinygraph_compiled", "jax"), ("tinygraph_compiled", "tinygraph"))


def ms_text(value):
    return f"{value:.0f}" if value >= 100 else f"{value:.3g}"


def _table(head, body):
    def row(cells):
        return "| " + " | ".join(cells) + " |"
    return [row(head), row(["---"] * len(head))] + [row(cells) for cells in body]


def present(result):
    """[(impl, title)] of the implementations in a result's rows, in column order."""
    rows = result["rows"]
    return [(key, title) for key, title in IMPL_COLUMNS if rows and key in rows[0]["ms"]]


def point_text(r):
    return f"({r['B']}, {r['H']}, {r['V']}, {r['T']})"


def markdown(result):
    """The tables of a result dict: median ms per step (and JAX's compile time), ratios to (c) and
    between tinygraph and JAX, peak step memory."""
    rows = result["rows"]
    impls = present(result)
    keys = [k for k, _ in impls]
    compiles = [k for k in keys if rows and k in rows[0].get("compile_ms", {})]
    head = (["cell", "dtype", "(B, H, V, T)"] + [t for _, t in impls]
            + [f"{SHORT[k]} compile" for k in compiles])
    lines = _table(head, [[r["cell"], r["dtype"], point_text(r)] + [ms_text(r["ms"][k]) for k in keys]
                          + [f"{r['compile_ms'][k] / 1e3:.2f} s" for k in compiles] for r in rows])
    ratios = [(k, "numpy_batched") for k in keys if k != "numpy_batched" and "numpy_batched" in keys]
    ratios += [(a, b) for a, b in PAIRS if a in keys and b in keys]
    if ratios:
        head = ["cell", "dtype", "(B, H, V, T)"] + [f"{SHORT[a]}/{SHORT[b]}" for a, b in ratios]
        lines += [""] + _table(head, [[r["cell"], r["dtype"], point_text(r)]
                                      + [f"{r['ms'][a] / r['ms'][b]:.2f}" for a, b in ratios]
                                      for r in rows])
    if result["memory"]:
        mem = [(k, t) for k, t in impls if k in result["memory"][0]["peak_mb"]]
        over_b = [k for k, _ in mem if k.startswith("tinygraph") and "numpy_per_step" in dict(mem)]
        head = ["cell"] + [t for _, t in mem] + [f"{SHORT[k]}/(b)" for k in over_b]
        lines += [""] + _table(head, [[e["cell"]] + [f"{e['peak_mb'][k]:.0f} MB" for k, _ in mem]
                                      + [f"{e['peak_mb'][k] / e['peak_mb']['numpy_per_step']:.2f}"
                                         for k in over_b] for e in result["memory"]])
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
    from . import machine
    wanted = args.impls.split(",") if args.impls else list(IMPLS)
    not_available = {}
    for impl in wanted:
        reason = unavailable(impl)
        if reason is not None:
            not_available[impl] = reason
            print(f"{impl}: not available, skipped: {reason}")
    impls = [i for i in wanted if i not in not_available]
    cells, dtypes = args.cells.split(","), args.dtypes.split(",")
    started = datetime.datetime.now(datetime.timezone.utc)
    load_before = os.getloadavg()
    described = machine.describe()
    checks = check_impls(impls, cells, dtypes, args.threads)
    result = run(args.grid, args.rounds, args.threads, cells, dtypes, impls, args.default_malloc,
                 args.points, memory=not args.no_memory)
    result = dict(machine=described, started=started.isoformat(timespec="seconds"),
                  finished=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                  load_average_before=list(load_before), load_average_after=list(os.getloadavg()),
                  not_available=not_available, checks=checks, **result)
    write_bytes_atomic(args.json, json.dumps(result, indent=1))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
