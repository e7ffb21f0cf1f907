"""The engine's per-node cost: a chain ``h = tanh(h + x)`` of 1000 steps (2000 ops), forward alone
and forward + backward, in CPU time per chain.

    python -m benchmarks.chain                   # (4, 4) float64 values: the engine's overhead shows
    python -m benchmarks.chain --shape 32,128    # values of a benchmark-sized cell

Each figure is the best of ``--repeats`` runs of ``--chains`` chains (garbage collector off), so a
comparison of two versions is a comparison of their fastest runs on a machine shared with others.
"""
import argparse
import gc
import sys
import time

import numpy as np

import tinygraph as tg


def chain(x, steps):
    h = x
    for _ in range(steps):
        h = tg.tanh(h + x)
    return h


def measure(shape=(4, 4), steps=1000, chains=20, repeats=7):
    """``{"forward_us", "forward_backward_us"}``: best CPU time of one chain of ``steps`` steps."""
    x = tg.tensor(np.ones(shape), requires_grad=True)

    def forward():  # the graph is dropped unused, as after an evaluation with grad on
        chain(x, steps)

    def forward_backward():
        chain(x, steps).sum().backward()

    enabled = gc.isenabled()
    gc.disable()
    try:
        result = {}
        for key, fn in (("forward_us", forward), ("forward_backward_us", forward_backward)):
            fn()
            best = float("inf")
            for _ in range(repeats):
                start = time.process_time()
                for _ in range(chains):
                    fn()
                best = min(best, (time.process_time() - start) / chains)
            result[key] = best * 1e6
        return result
    finally:
        if enabled:
            gc.enable()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", default="4,4")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    shape = tuple(int(n) for n in args.shape.split(","))
    r = measure(shape, args.steps, args.chains, args.repeats)
    print(f"h = tanh(h + x), {args.steps} steps, {shape} float64: forward {r['forward_us']:.0f} us "
          f"({r['forward_us'] * 1e3 / (2 * args.steps):.0f} ns per op), forward + backward "
          f"{r['forward_backward_us']:.0f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
