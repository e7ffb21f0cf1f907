"""RTRL against BPTT: time and peak memory of one gradient over T steps (the textbook trade-off).

    python -m benchmarks.rtrl                    # T in {100, 1000, 10000}, H in {8, 32}; about a minute
    python -m benchmarks.rtrl --json docs/rtrl.json

An Elman RNN cell (tanh), batch 1, one input feature, float64; loss = Σ_t (h_t · 1)². RTRL is
``rnn_models.rtrl`` (mode "jacobian": one reverse pass per state element and step, M_t carried
forward); BPTT is ``loss.backward()`` over the unrolled graph. Peak memory is tracemalloc's peak
(numpy reports its buffers to it) during the gradient, above what was allocated before.
"""
import argparse
import json
import time
import tracemalloc

import numpy as np

import tinygraph as tg
from rnn_models import Recurrent, RNNCell
from rnn_models import rtrl
from tinygraph.io import write_bytes_atomic


def problem(H, T, seed=0):
    tg.manual_seed(seed)
    node = Recurrent(RNNCell(1, H))
    xs = np.random.default_rng(seed).standard_normal((T, 1, 1))
    return node, xs


def loss_fn(t, out):
    return out.sum() ** 2


def bptt(node, xs):
    outputs, _ = node.unroll(tg.tensor(xs))   # T outputs, each (1, H)
    loss = tg.sum([loss_fn(t, out) for t, out in enumerate(outputs)])
    loss.backward()
    return {n: p.grad for n, p in node.named_parameters()}


def measure(fn):
    tracemalloc.start()
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return result, seconds * 1e3, peak / 2**20


def run(Ts=(100, 1000, 10000), Hs=(8, 32)):
    rows = []
    for H in Hs:
        for T in Ts:
            node, xs = problem(H, T)
            params = sum(p.size for p in node.parameters())
            (_, g_rtrl), ms_rtrl, mb_rtrl = measure(lambda: rtrl(node, xs, loss_fn))
            for p in node.parameters():
                p.grad = None
            g_bptt, ms_bptt, mb_bptt = measure(lambda: bptt(node, xs))
            err = max(float(np.abs(g_rtrl[n] - g_bptt[n]).max() / (1 + np.abs(g_bptt[n]).max()))
                      for n in g_bptt)
            rows.append(dict(H=H, T=T, params=params, rtrl_ms=ms_rtrl, rtrl_mb=mb_rtrl,
                             bptt_ms=ms_bptt, bptt_mb=mb_bptt, max_rel_diff=err))
            print(f"H={H:3d} T={T:6d} P={params:5d}  RTRL {ms_rtrl:9.1f} ms {mb_rtrl:8.2f} MB   "
                  f"BPTT {ms_bptt:8.1f} ms {mb_bptt:8.2f} MB   max rel diff {err:.1e}", flush=True)
    return rows


def markdown(rows):
    lines = ["| H | params | T | RTRL ms | RTRL peak MB | BPTT ms | BPTT peak MB |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['H']} | {r['params']} | {r['T']} | {r['rtrl_ms']:.0f} | {r['rtrl_mb']:.2f} | "
                     f"{r['bptt_ms']:.0f} | {r['bptt_mb']:.2f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the rows to this file")
    parser.add_argument("--steps", default="100,1000,10000", help="comma-separated T values")
    parser.add_argument("--hidden", default="8,32", help="comma-separated H values")
    args = parser.parse_args(argv)
    rows = run(tuple(int(v) for v in args.steps.split(",")), tuple(int(v) for v in args.hidden.split(",")))
    print(markdown(rows))
    if args.json:
        write_bytes_atomic(args.json, (json.dumps(rows, indent=1) + "\n").encode())


if __name__ == "__main__":
    main()
