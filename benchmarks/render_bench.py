"""How long pictures of unrolled nets take to draw (Python: Graph -> DOT) and lay out (Graphviz `dot`).

Bars from the visualize issue: a cell-level unrolled RNN at T=500 in < 2 s, an op-level LSTM at T=50 in
< 10 s. For contrast, on an op-level RNN: ours (a per-step reference to each shared parameter, state
edges that do not constrain ranks, a hidden chain keeping the steps in order) next to (a) the same with
each shared parameter one node with an edge into every step and (b) the plain drawing torchviz-style
tools produce: shared nodes and state edges that push every step one rank further (a staircase).

    python benchmarks/render_bench.py [--repeat 3] [--naive-steps 500] [--contrast-timeout 20]

Wall time is what the bars are about; dot's CPU time is printed too, since other processes on the
machine stretch wall time but not CPU time.
"""
import argparse
import os
import re
import resource
import sys
import time

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

import rnn_models  # noqa: E402
import tinygraph as tg  # noqa: E402
import visualize  # noqa: E402

CASES = [  # (label, cell, T, level, bar in seconds)
    ("rnn cell-level", "rnn", 500, "cell", 2.0),
    ("lstm op-level", "lstm", 50, "op", 10.0),
]


def unrolled(cell, steps, level, hidden=8, inputs=4, seed=0):
    """The Graph of a last-step loss of a seeded one-layer net over a random x (T, 1, inputs). Op-level
    pictures use the unfused cells (``fused=False``): every gate as primitives in its own scope."""
    tg.manual_seed(seed)
    layer = {"rnn": rnn_models.RNN, "lstm": rnn_models.LSTM, "gru": rnn_models.GRU}[cell]
    model = layer(inputs, hidden, fused=level != "op")
    x = tg.tensor(np.random.default_rng(seed).standard_normal((steps, 1, inputs)), name="x")
    out, _ = model(x)
    return tg.Graph.of((out[-1] ** 2).sum())


def shared_node(source):
    """The same picture with every per-step reference replaced by an edge from the one shared node."""
    source = re.sub(r"^\s*r\d+_\d+(_\d+)? \[.*\]\n", "", source, flags=re.M)
    return re.sub(r"^(\s*)r(\d+)_\d+(?:_\d+)? ->", r"\1n\2 ->", source, flags=re.M)


def plain(source):
    """``shared_node`` plus state edges that constrain ranks and no hidden time-order chain."""
    source = shared_node(source).replace(" constraint=false", "")
    chain = re.compile(r"\s*(tl\d+|subgraph timeline)")
    return "\n".join(line for line in source.split("\n") if not chain.match(line))


def time_layout(source, timeout):
    """``(wall seconds, dot CPU seconds)``, or ``(None, None)`` past the timeout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    try:
        visualize.layout(source, "svg", timeout=timeout)
    except visualize.RenderError:
        return None, None
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure(graph, level, repeat, timeout, transform=None):
    """Best of ``repeat``: ``(nodes drawn, build s, layout wall s, layout CPU s)``."""
    best = None
    for _ in range(repeat):
        start = time.perf_counter()
        source = visualize.to_dot(graph, level=level, max_nodes=10 ** 6).source
        build = time.perf_counter() - start
        if transform:
            source = transform(source)
        wall, cpu = time_layout(source, timeout)
        if wall is None:
            return source.count(" [label="), build, None, None
        if best is None or build + wall < best[1] + best[2]:
            best = (source.count(" [label="), build, wall, cpu)
    return best


def row(label, steps, level, result, bar=None):
    nodes, build, wall, cpu = result
    if wall is None:
        return f"{label:30s} {steps:>5d} {level:>5s} {nodes:>6d} {build:8.2f} {'timeout':>9s}"
    total = build + wall
    verdict = "" if bar is None else (f"< {bar:g} s ok" if total < bar else f"OVER {bar:g} s")
    return (f"{label:30s} {steps:>5d} {level:>5s} {nodes:>6d} {build:8.2f} {wall:9.2f} {cpu:8.2f} "
            f"{total:8.2f}  {verdict}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--naive-steps", type=int, default=500)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--contrast-timeout", type=float, default=20.0)
    args = parser.parse_args(argv)
    visualize.dot_executable()
    print(f"{'picture':30s} {'T':>5s} {'level':>5s} {'nodes':>6s} {'build s':>8s} {'layout s':>9s} "
          f"{'dot CPU':>8s} {'total s':>8s}  bar")
    failed = False
    for label, cell, steps, level, bar in CASES:
        result = measure(unrolled(cell, steps, level), level, args.repeat, args.timeout)
        failed |= result[2] is None or result[1] + result[2] >= bar
        print(row(label, steps, level, result, bar), flush=True)
    graph = unrolled("rnn", args.naive_steps, "op")
    for label, transform in (("rnn op-level, ours", None), ("  (a) one shared node", shared_node),
                             ("  (b) plain, staircase", plain)):
        result = measure(graph, "op", 1, args.contrast_timeout, transform)
        print(row(label, args.naive_steps, "op", result), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
