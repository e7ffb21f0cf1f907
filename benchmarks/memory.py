"""Peak memory of a recurrent cell written from primitives, against what its gradient rules keep.

    python -m benchmarks.memory                      # (B, H, T) = (32, 128, 2000), float64
    python -m benchmarks.memory --size 32,128,200    # B,H,T

The cell is a minimal gated unit unrolled by hand in a Python loop, every gate an ordinary op, so
the engine (not a fused op or a layer's slab) decides what is kept::

    z = sigmoid(x_t @ W_z + h @ U_z + b_z)
    c = tanh(x_t @ W_c + h @ U_c + b_c)
    h = z * h + (1 - z) * c                  # loss = sum(h_T * h_T)

The peak is traced (``tracemalloc``) over forward and backward in one run, not counting the input
sequence and the parameters; the saved bytes are ``Graph.memory()`` right before backward, in a
second identical run (the Graph holds its nodes, so it is not built in the measured one), over the
op nodes. Their ratio says how much more than the values backward reads the engine holds at its
worst: the pre-activations and products no rule reads, while they wait for a sweep, the per-node
bookkeeping, and backward's gradients.
"""
import argparse
import json
import sys
import tracemalloc

import numpy as np

import tinygraph as tg


def make(B, H, T, dtype=np.float64, seed=0):
    """(xs (T, B, H) array, parameters {name: leaf}) of the gated cell, input size H."""
    rng = np.random.default_rng(seed)
    xs = rng.standard_normal((T, B, H)).astype(dtype)
    shapes = {"W_z": (H, H), "U_z": (H, H), "b_z": (H,), "W_c": (H, H), "U_c": (H, H), "b_c": (H,)}
    params = {name: tg.tensor((rng.standard_normal(shape) / np.sqrt(H)).astype(dtype),
                              requires_grad=True, name=name) for name, shape in shapes.items()}
    return xs, params


def gated_loss(xs, p):
    """The loss of the module docstring's loop over xs (T, B, H), from a zero state."""
    X = tg.Tensor._wrap(xs)
    h = tg.tensor(np.zeros(xs.shape[1:], dtype=xs.dtype))
    for t in range(xs.shape[0]):
        x = X[t]
        z = tg.sigmoid(x @ p["W_z"] + h @ p["U_z"] + p["b_z"])
        c = tg.tanh(x @ p["W_c"] + h @ p["U_c"] + p["b_c"])
        h = z * h + (1 - z) * c
    return (h * h).sum()


def gated_cell_memory(B=32, H=128, T=2000, dtype=np.float64):
    """``{"peak_bytes", "saved_bytes", "ratio", "saved_by_op"}`` of forward + backward at (B, H, T)."""
    xs, params = make(B, H, T, dtype)
    gated_loss(make(2, 4, 2)[0], make(2, 4, 2)[1]).backward()  # imports and caches, not counted
    tracemalloc.start()
    try:
        gated_loss(xs, params).backward()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    for p in params.values():
        p.grad = None
    loss = gated_loss(xs, params)
    usage = loss.graph().memory()
    saved = {op: n for op, n in usage.items() if op != "leaf"}
    total = sum(saved.values())
    return {"peak_bytes": peak, "saved_bytes": total, "ratio": peak / total, "saved_by_op": saved}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="32,128,2000", help="B,H,T")
    parser.add_argument("--dtype", default="float64")
    args = parser.parse_args(argv)
    B, H, T = (int(n) for n in args.size.split(","))
    result = gated_cell_memory(B, H, T, np.dtype(args.dtype))
    print(f"gated cell from primitives, (B, H, T) = ({B}, {H}, {T}) {args.dtype}: peak "
          f"{result['peak_bytes'] / 2**20:.1f} MB, saved values {result['saved_bytes'] / 2**20:.1f} MB, "
          f"ratio {result['ratio']:.2f}")
    print(json.dumps({k: v for k, v in result.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
