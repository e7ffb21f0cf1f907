"""Compiled vs eager step time for the benchmark's model (``tinygraph_impl``), interleaved rounds.

python -m benchmarks.compile_ratio [--rounds R] [--cells rnn,lstm] [--points 0,1]

BLAS is pinned to one thread (as ``benchmarks.run`` does) unless the environment already sets it.
Each round times a batch of eager steps and a batch of compiled replays of one model each (the same
initial parameters, SGD through ``tg.optim``); the figure is the minimum per-step time over rounds.
"""
import argparse
import os
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")   # before numpy loads BLAS

import numpy as np  # noqa: E402

from .tinygraph_impl import make_step  # noqa: E402

GRID = [(1, 32, 16, 25), (1, 16, 8, 1000), (32, 128, 64, 50), (64, 512, 128, 100)]


def make(cell, B, H, V, T, compiled=False):
    """The benchmark's float64 step (SGD through ``tg.optim``), eager or through ``tg.compile``."""
    return make_step(cell, "float64", B, H, V, T, seed=0, compiled=compiled)[1]


def measure(cell, B, H, V, T, rounds):
    rng = np.random.default_rng(0)
    x = np.eye(V)[rng.integers(0, V, (T, B))]
    targets = rng.integers(0, V, (T, B))
    eager, compiled = make(cell, B, H, V, T), make(cell, B, H, V, T, compiled=True)
    eager(x, targets), compiled(x, targets)   # warm up; the compiled one traces
    start = time.perf_counter()
    eager(x, targets)
    n = max(1, int(0.05 / (time.perf_counter() - start)))  # about 50 ms per batch of steps
    best = {"eager": float("inf"), "compiled": float("inf")}
    for _ in range(rounds):
        for name, fn in (("eager", eager), ("compiled", compiled)):
            start = time.perf_counter()
            for _ in range(n):
                fn(x, targets)
            best[name] = min(best[name], (time.perf_counter() - start) / n)
    return best["eager"], best["compiled"], compiled.plan


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--cells", default="rnn,lstm")
    parser.add_argument("--points", default=",".join(map(str, range(len(GRID)))),
                        help="indices into the grid, e.g. 0,1 for the small points")
    args = parser.parse_args()
    print(f"{'cell':5} {'(B,H,V,T)':18} {'eager ms':>9} {'compiled ms':>12} {'ratio':>6}")
    for cell in args.cells.split(","):
        for point in [GRID[int(i)] for i in args.points.split(",")]:
            e, c, plan = measure(cell, *point, args.rounds)
            print(f"{cell:5} {str(point):18} {e * 1e3:9.3f} {c * 1e3:12.3f} {c / e:6.2f}   {plan!r}",
                  flush=True)


if __name__ == "__main__":
    main()
