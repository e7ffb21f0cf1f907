"""A user's cell from primitives against the same step written by hand: the minimal gated unit.

    python -m benchmarks.mgu                          # check, then time the default points
    python -m benchmarks.mgu --json benchmarks/results/mgu.json --rounds 5
    python -m benchmarks.mgu --markdown docs/mgu_benchmark.json     # the table of a saved run
    python -m benchmarks.mgu --readme README.md       # the README's block, from the run it names

The cell is ``examples.cells:MinimalGatedUnit`` (Zhou et al. 2016), written by a user from tinygraph
primitives — no fused op, no gradient rule of its own. One training step has the conventions of
``benchmarks.baselines``: forward over T steps from h0 = 0, a linear head with softmax cross-entropy at
every step (the mean over all T*B positions), BPTT, SGD with lr = 0.1; x (T, B, V) one-hot, targets
(T, B) int64. The cell, with the parameters of its three Linear layers (``PARAM_NAMES``)::

    [a_f | a_h] = x_t @ input.weight.T + input.bias            input.weight (2H, V), input.bias (2H,)
    f  = sigmoid(a_f + h @ forget.weight.T)                      forget.weight (H, H)
    h~ = tanh(a_h + (f * h) @ candidate.weight.T)                candidate.weight (H, H)
    h' = h + f * (h~ - h)                                        = (1 - f) * h + f * h~
    logits_t = h' @ head.weight.T + head.bias                    head.weight (V, H), head.bias (V,)

Implementations:

* ``numpy_per_step`` (b): hand-written numpy, every op one time step at a time — forward storing h_t,
  f_t and h~_t, backward through time by hand, weight gradients accumulated per step, SGD update.
* ``tinygraph`` (eager): ``Recurrent(MinimalGatedUnit(V, H), state_size=H)`` + ``tg.nn.Linear`` head,
  the head and loss as one ``tg.linear_cross_entropy`` node (as ``benchmarks.tinygraph_impl``), SGD
  through ``tg.optim.SGD``; the graph is built every step.
* ``tinygraph_compiled``: that step through ``tg.compile`` (traced once, replayed).

Before anything is timed, loss, gradients and two SGD steps of both tinygraph steps are compared with
(b)'s at a tiny size (``benchmarks.worker.CHECK_SIZE``; float64 to 1e-10); a mismatch stops the run.
Each point is then timed in a fresh process with run.py's worker settings (one BLAS thread set in its
environment before numpy loads, bound to one CPU, glibc keeping freed memory): ``WARMUP`` steps of
each, then interleaved rounds — a turn of (b), of eager, of compiled, repeated — each turn one untimed
step and then the timed ones, all on the same data, so the three end at the same parameters (their
agreement at full size is recorded too). The figures are the median and the best of all timed steps.
"""
import argparse
import datetime
import json
import math
import os
import re
import statistics
import subprocess
import sys
import time

import numpy as np

import tinygraph as tg
from examples.cells import MinimalGatedUnit
from rnn_models import Recurrent

from . import machine, run, worker
from .baselines import LR, _check_dtype, _sigmoid_, _softmax_xent_, make_data
from .tinygraph_impl import sgd_step

PARAM_NAMES = ("input.weight", "input.bias", "forget.weight", "candidate.weight", "head.weight",
               "head.bias")
IMPLS = ("numpy_per_step", "tinygraph", "tinygraph_compiled")
TITLES = {"numpy_per_step": "(b) numpy per-step", "tinygraph": "tinygraph eager",
          "tinygraph_compiled": "tinygraph compiled"}
# run.py's small, long and mid points: each is timed in a few seconds. The large one
# (64, 512, 128, 100) takes seconds per step and implementation; it is there with --points.
POINTS = [(1, 32, 16, 25), (1, 16, 8, 1000), (32, 128, 64, 50)]
BAR = 2.0                       # the speed issue's bar: compiled / (b) <= 2 at every point
ROUND_SECONDS = 0.25            # timed steps per turn are chosen so eager's take about this
# Warm-up steps of each implementation. CPython (3.11 here) specializes a function's bytecode once it
# has been called 8 times, and a compiled replay is one function called once per step: measured at
# (1, 16, 8, 1000), replays 2-9 took 96-102 µs per time step, from the 10th on 70-75.
WARMUP = 10


# ---------------------------------------------------------------------------
# Parameters
# ---------------------------------------------------------------------------

def param_shapes(H, V):
    """{name: shape} of the MGU over V inputs with H units, plus the (V, H) head."""
    return {"input.weight": (2 * H, V), "input.bias": (2 * H,), "forget.weight": (H, H),
            "candidate.weight": (H, H), "head.weight": (V, H), "head.bias": (V,)}


def init_params(H, V, seed, dtype):
    """Deterministic parameters shared by every implementation: each Linear's tensors from
    uniform(-1/sqrt(in_features), 1/sqrt(in_features)) (``tg.nn.Linear``'s and PyTorch's default),
    drawn in float64 in the order of PARAM_NAMES and then cast, as ``baselines.init_params`` does."""
    dtype = _check_dtype(dtype)
    rng = np.random.default_rng(seed)
    in_features = {"input.weight": V, "input.bias": V}      # the other Linear layers read h: H
    params = {}
    for name, shape in param_shapes(H, V).items():
        bound = 1 / math.sqrt(in_features.get(name, H))
        params[name] = rng.uniform(-bound, bound, size=shape).astype(dtype)
    return params


# ---------------------------------------------------------------------------
# (b) numpy per step
# ---------------------------------------------------------------------------

class Workspace:
    """What forward keeps for BPTT, allocated once per shape and reused by every step.

    hs:      (T+1, B, H)  h_0..h_T, hs[0] = 0.
    gates:   (T, B, 2H)   step t's [a_f | a_h] pre-activations, turned in place into [f | h~].
    dlogits: (T, B, V)    the logits, turned in place into dloss/dlogits.
    """

    def __init__(self, T, B, H, V, dtype):
        self.hs = np.empty((T + 1, B, H), dtype=dtype)
        self.gates = np.empty((T, B, 2 * H), dtype=dtype)
        self.dlogits = np.empty((T, B, V), dtype=dtype)

    def fits(self, T, B, H, V, dtype):
        return (self.hs.shape, self.dlogits.shape, self.hs.dtype) == ((T + 1, B, H), (T, B, V), dtype)


def _check_numpy_inputs(params, x, targets):
    """(T, B, H, V) of valid inputs, else a clear error naming what does not fit."""
    who = "benchmarks.mgu.numpy_loss_and_grads"
    missing = [n for n in PARAM_NAMES if n not in params]
    if missing:
        raise KeyError(f"{who}: params lack {missing}; expected the names {PARAM_NAMES} (init_params)")
    if np.ndim(x) != 3:
        raise ValueError(f"{who}: x must be (T, B, V), got shape {np.shape(x)}")
    T, B, V = x.shape
    H = params["forget.weight"].shape[0]
    shapes = param_shapes(H, V)
    wrong = {n: params[n].shape for n in PARAM_NAMES if params[n].shape != shapes[n]}
    if wrong:
        raise ValueError(f"{who}: parameter shapes {wrong} do not fit x {x.shape} with H = {H}; "
                         f"expected {shapes}")
    dtype = params["forget.weight"].dtype
    if x.dtype != dtype or any(params[n].dtype != dtype for n in PARAM_NAMES):
        raise TypeError(f"{who}: x and every parameter must share one dtype (x {x.dtype}, params "
                        f"{sorted({str(params[n].dtype) for n in PARAM_NAMES})}); numpy would promote "
                        f"silently")
    if np.shape(targets) != (T, B) or np.asarray(targets).dtype.kind not in "iu":
        raise ValueError(f"{who}: targets must be integers of shape (T, B) = {(T, B)}, got "
                         f"{np.asarray(targets).dtype} {np.shape(targets)}")
    return T, B, H, V


def numpy_loss_and_grads(params, x, targets, ws=None):
    """(b): loss, {name: gradient} and the workspace, one time step at a time; params unchanged.

    params: {name: ndarray} (``init_params``); x (T, B, V); targets (T, B) int; ws: a Workspace to
    reuse (None or one of other shapes: a new one). Returns (loss: float, grads, ws).
    """
    T, B, H, V = _check_numpy_inputs(params, x, targets)
    W_in, b_in, U_f, U_h, W_y, b_y = (params[n] for n in PARAM_NAMES)
    dtype = W_in.dtype
    if ws is None or not ws.fits(T, B, H, V, dtype):
        ws = Workspace(T, B, H, V, dtype)
    ws.hs[0] = 0
    scale = 1.0 / (T * B)

    loss = 0.0
    for t in range(T):
        h, h_new, g = ws.hs[t], ws.hs[t + 1], ws.gates[t]
        f, cand = g[:, :H], g[:, H:]
        np.matmul(x[t], W_in.T, out=g)
        g += b_in
        f += h @ U_f.T
        _sigmoid_(f)
        cand += (f * h) @ U_h.T
        np.tanh(cand, out=cand)
        np.subtract(cand, h, out=h_new)     # h' = h + f * (h~ - h)
        h_new *= f
        h_new += h
        logits = ws.dlogits[t]
        np.matmul(h_new, W_y.T, out=logits)
        logits += b_y
        loss += _softmax_xent_(logits, targets[t], scale)

    grads = {n: np.zeros_like(params[n]) for n in PARAM_NAMES}
    dW_in, db_in, dU_f, dU_h, dW_y, db_y = (grads[n] for n in PARAM_NAMES)
    dh_next = np.zeros((B, H), dtype=dtype)     # dloss/dh_t through step t+1
    da = np.empty((B, 2 * H), dtype=dtype)      # dloss/d[a_f | a_h] of step t
    da_f, da_h = da[:, :H], da[:, H:]
    for t in reversed(range(T)):
        h, h_new, dlogits = ws.hs[t], ws.hs[t + 1], ws.dlogits[t]
        f, cand = ws.gates[t][:, :H], ws.gates[t][:, H:]
        dW_y += dlogits.T @ h_new
        db_y += dlogits.sum(axis=0)
        dh = dlogits @ W_y
        dh += dh_next
        # h' = h + f * (h~ - h)
        np.subtract(cand, h, out=da_f)          # the part of dloss/df through h', finished below
        da_f *= dh
        np.multiply(dh, f, out=da_h)            # dloss/dh~, then through tanh
        da_h *= 1 - cand * cand
        dh_next = dh - dh * f                   # the part of dloss/dh through h' directly
        # h~ = tanh(a_h + (f * h) @ U_h.T)
        fh = f * h                              # recomputed: cheaper than storing it
        dU_h += da_h.T @ fh
        dfh = da_h @ U_h
        da_f += dfh * h
        dh_next += dfh * f
        # f = sigmoid(a_f + h @ U_f.T)
        da_f *= f * (1 - f)
        dU_f += da_f.T @ h
        dh_next += da_f @ U_f
        # [a_f | a_h] = x_t @ W_in.T + b_in
        dW_in += da.T @ x[t]
        db_in += da.sum(axis=0)
    return loss * scale, grads, ws


def make_numpy_step(dtype, B, H, V, T, seed, lr=LR):
    """(params, step_fn): step_fn(x, targets) -> loss before an in-place SGD update of params."""
    params = init_params(H, V, seed, dtype)
    state = {"ws": Workspace(T, B, H, V, _check_dtype(dtype))}

    def step(x, targets):
        loss, grads, state["ws"] = numpy_loss_and_grads(params, x, targets, state["ws"])
        for name, p in params.items():
            g = grads[name]
            g *= lr                             # the grads are ours: scale in place
            p -= g
        return loss
    return params, step


# ---------------------------------------------------------------------------
# tinygraph: the user's cell, eager and compiled
# ---------------------------------------------------------------------------

class Model(tg.nn.Module):
    """x (T, B, V) -> the mean cross-entropy of a linear head over every step's h (T, B, H).

    ``rnn``: ``Recurrent(MinimalGatedUnit(V, H), state_size=H)``; ``head``: ``Linear(H, V)``, applied
    with the loss as one ``tg.linear_cross_entropy`` node (as ``benchmarks.tinygraph_impl`` does).
    """

    def __init__(self, H, V):
        super().__init__()
        self.rnn = Recurrent(MinimalGatedUnit(V, H), state_size=H)
        self.head = tg.nn.Linear(H, V)

    def loss(self, x, targets):
        out = self.rnn.sequence(x)[0]
        return tg.linear_cross_entropy(out, self.head.weight, self.head.bias, targets)


def build(params, dtype):
    """A Model of ``dtype`` loaded with ``params`` ({PARAM_NAMES name: array})."""
    V, H = params["head.weight"].shape
    model = Model(H, V).to(np.dtype(dtype))
    model.load_state_dict({model_name(n): v for n, v in params.items()})
    return model


def model_name(name):
    """The tinygraph model's name for a parameter of PARAM_NAMES ("input.weight" -> "rnn.cell.input.weight")."""
    return name if name.startswith("head.") else "rnn.cell." + name


def model_params(model):
    """{PARAM_NAMES name: the parameter's array} of a built model."""
    return {n: dict(model.named_parameters())[model_name(n)].data for n in PARAM_NAMES}


def make_tinygraph_step(dtype, B, H, V, T, seed, lr=LR, compiled=False):
    """(model, step_fn): the same step as make_numpy_step, eager or through ``tg.compile``.
    (B and T are the data's; the eager step takes any.)"""
    model = build(init_params(H, V, seed, dtype), dtype)
    return model, sgd_step(model, lr, compiled)


def tinygraph_loss_and_grads(params, x, targets):
    """(loss, {name: gradient}) of one eager forward + backward; params unchanged."""
    model = build(params, x.dtype)
    loss = model.loss(tg.Tensor._wrap(x), targets)
    loss.backward()
    named = dict(model.named_parameters())
    return loss.item(), {n: named[model_name(n)].grad for n in PARAM_NAMES}


def make_step(impl, dtype, B, H, V, T, seed):
    """(step_fn, current_params() -> {name: array}) for one of IMPLS."""
    if impl == "numpy_per_step":
        params, step = make_numpy_step(dtype, B, H, V, T, seed)
        return step, lambda: params
    if impl not in IMPLS:
        raise ValueError(f"benchmarks.mgu: unknown implementation {impl!r}; expected one of {IMPLS}")
    model, step = make_tinygraph_step(dtype, B, H, V, T, seed, compiled=impl == "tinygraph_compiled")
    return step, lambda: model_params(model)


# ---------------------------------------------------------------------------
# The check, before timing
# ---------------------------------------------------------------------------

def difference(a, b):
    """Largest |a - b| / max(1, |b|) (b the reference), as benchmarks.worker measures."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(1, np.abs(b))))


def check(dtype, seed=0, size=worker.CHECK_SIZE):
    """Both tinygraph steps against (b) at a tiny size: {"loss", "grads" (eager: one forward +
    backward), "step_losses", "step_params" (eager and compiled, two SGD steps each), "tol", "ok"}."""
    B, H, V, T = (size[k] for k in "BHVT")
    params = init_params(H, V, seed, dtype)
    x, targets = make_data(B, V, T, seed + 1, dtype)
    loss_ref, grads_ref = numpy_loss_and_grads(params, x, targets)[:2]
    loss, grads = tinygraph_loss_and_grads(params, x, targets)
    out = {"loss": difference(loss, loss_ref),
           "grads": max(difference(grads[n], grads_ref[n]) for n in PARAM_NAMES),
           "grad_dtypes_ok": all(grads[n].dtype == np.dtype(dtype) for n in PARAM_NAMES)}
    ref_step, ref_params = make_step("numpy_per_step", dtype, B, H, V, T, seed)
    ref = [ref_step(x, targets) for _ in range(2)]
    out["step_losses"] = out["step_params"] = 0.0
    for impl in ("tinygraph", "tinygraph_compiled"):
        step, current = make_step(impl, dtype, B, H, V, T, seed)
        losses = [step(x, targets) for _ in range(2)]
        out["step_losses"] = max(out["step_losses"], *(difference(a, b) for a, b in zip(losses, ref)))
        out["step_params"] = max(out["step_params"], *(difference(current()[n], ref_params()[n])
                                                      for n in PARAM_NAMES))
    out["tol"] = worker.CHECK_TOL[np.dtype(dtype).name]
    out["ok"] = out["grad_dtypes_ok"] and all(out[k] <= out["tol"] for k in run.DIFFERENCES)
    return out


# ---------------------------------------------------------------------------
# Timing: one process per point
# ---------------------------------------------------------------------------

def blas_threads():
    """Threads of the BLAS numpy loaded in this process (threadpoolctl), or None if unknown."""
    try:
        import threadpoolctl  # noqa: PLC0415
    except ImportError:
        return None
    return max((i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"),
               default=None)


def time_point(spec):
    """In the timing process: warm-up, then interleaved rounds of every implementation.

    spec: {"dtype", "B", "H", "V", "T", "seed", "rounds"}. In each round every implementation has a
    turn of 1 + ``steps_per_round`` steps, all but the first timed. Returns per implementation the
    timed steps' times (ms), the turns' first steps' times, the first warm-up step's time (the
    compiled one traces in it), and how far the losses of every step and the final parameters are
    from (b)'s.
    """
    B, H, V, T = (spec[k] for k in "BHVT")
    x, targets = make_data(B, V, T, spec["seed"] + 1, spec["dtype"])
    steps = {impl: make_step(impl, spec["dtype"], B, H, V, T, spec["seed"]) for impl in IMPLS}
    losses = {impl: [] for impl in IMPLS}
    first_ms, last_warmup_ms = {}, {}
    for impl, (step, _) in steps.items():
        for k in range(WARMUP):
            start = time.perf_counter()
            losses[impl].append(step(x, targets))
            elapsed = (time.perf_counter() - start) * 1e3
            if k == 0:
                first_ms[impl] = elapsed
            last_warmup_ms[impl] = elapsed
    per_round = max(1, min(50, int(ROUND_SECONDS * 1e3 / max(last_warmup_ms.values()))))
    ms, turn_first_ms = {impl: [] for impl in IMPLS}, {impl: [] for impl in IMPLS}
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(spec["rounds"]):
        for impl, (step, _) in steps.items():
            # A turn's first step runs after the other implementations' steps have filled the caches
            # with their memory and code; it is kept apart (turn_first_ms), so that the timed steps
            # run as in a training loop, after a step of their own.
            for k in range(1 + per_round):
                start = time.perf_counter()
                losses[impl].append(step(x, targets))
                (ms if k else turn_first_ms)[impl].append((time.perf_counter() - start) * 1e3)
    cpu_over_wall = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
    reference = steps["numpy_per_step"][1]()
    agreement = {impl: {"step_losses": max(difference(a, b) for a, b in
                                           zip(losses[impl], losses["numpy_per_step"])),
                        "final_params": max(difference(steps[impl][1]()[n], reference[n])
                                            for n in PARAM_NAMES)}
                 for impl in IMPLS if impl != "numpy_per_step"}
    return {"ms": ms, "turn_first_ms": turn_first_ms, "first_ms": first_ms, "steps_per_round": per_round,
            "steps_each": WARMUP + spec["rounds"] * (1 + per_round), "agreement": agreement,
            "cpu_over_wall": cpu_over_wall, "blas_threads": blas_threads(),
            "cpus_allowed": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None}


def measure(spec):
    """One point timed in a fresh process with the main benchmark's worker settings (one BLAS thread
    in its environment before numpy loads, bound to one CPU, freed memory kept)."""
    command = [sys.executable, "-m", "benchmarks.mgu", "--time-point", json.dumps(spec)]
    result = subprocess.run(command, env=run.worker_env(1), capture_output=True, text=True,
                            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if result.returncode != 0:
        raise RuntimeError(f"benchmarks.mgu: the timing process failed for {spec}:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def row_of(dtype, point, out):
    """A result row: median and best ms per step per implementation, and what the process saw."""
    B, H, V, T = point
    return dict(dtype=dtype, B=B, H=H, V=V, T=T,
                ms={i: statistics.median(out["ms"][i]) for i in IMPLS},
                best_ms={i: min(out["ms"][i]) for i in IMPLS},
                turn_first_ms={i: statistics.median(out["turn_first_ms"][i]) for i in IMPLS},
                first_ms=out["first_ms"], steps_per_round=out["steps_per_round"],
                steps_each=out["steps_each"], agreement=out["agreement"],
                cpu_over_wall=out["cpu_over_wall"], blas_threads=out["blas_threads"],
                cpus_allowed=out["cpus_allowed"])


def benchmark(points, dtypes, rounds, seed=0, log=print):
    """Check, then time every point: the result dict saved as JSON."""
    started = datetime.datetime.now(datetime.timezone.utc)
    load_before = os.getloadavg()
    checks = {}
    for dtype in dtypes:
        checks[dtype] = check(dtype, seed)
        if not checks[dtype]["ok"]:
            raise RuntimeError(f"benchmarks.mgu: tinygraph does not compute what (b) computes "
                               f"({dtype}): {checks[dtype]}")
        worst = max(checks[dtype][k] for k in run.DIFFERENCES)
        log(f"checked tinygraph eager and compiled against (b), {dtype}: largest relative "
            f"difference {worst:.1e}")
    rows = []
    for dtype in dtypes:
        for point in points:
            spec = dict(dtype=dtype, B=point[0], H=point[1], V=point[2], T=point[3], seed=seed,
                        rounds=rounds)
            rows.append(row_of(dtype, point, measure(spec)))
            log(format_row(rows[-1]))
    return dict(machine=machine.describe(), started=started.isoformat(timespec="seconds"),
                finished=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                load_average_before=list(load_before), load_average_after=list(os.getloadavg()),
                threads=1, pinned_to_one_cpu=True, keep_freed_memory=True, rounds=rounds, seed=seed,
                bar=BAR, checks=checks, rows=rows)


# ---------------------------------------------------------------------------
# Reporting: the table and the sentences, from a result
# ---------------------------------------------------------------------------

def ratio(row, impl, which="ms"):
    return row[which][impl] / row[which]["numpy_per_step"]


def format_row(row):
    ms = row["ms"]
    return (f"{row['dtype']:7s} {run.point_text(row):20s} "
            + "  ".join(f"{i}={ms[i]:9.3f}ms" for i in IMPLS)
            + f"  eager/(b)={ratio(row, 'tinygraph'):.2f}  compiled/(b)={ratio(row, 'tinygraph_compiled'):.2f}")


def markdown(result):
    """The table of a result: median ms per step, and each tinygraph step's time over (b)'s."""
    head = (["dtype", "(B, H, V, T)"] + [TITLES[i] for i in IMPLS]
            + ["eager/(b)", "compiled/(b)", "compiled/(b), best steps"])
    body = [[r["dtype"], run.point_text(r)] + [run.ms_text(r["ms"][i]) for i in IMPLS]
            + [f"{ratio(r, 'tinygraph'):.2f}", f"{ratio(r, 'tinygraph_compiled'):.2f}",
               f"{ratio(r, 'tinygraph_compiled', 'best_ms'):.2f}"] for r in result["rows"]]
    return "\n".join(run._table(head, body))


def _spread(values):
    lo, hi = f"{min(values):.2f}", f"{max(values):.2f}"
    return f"{lo}×" if lo == hi else f"{lo}–{hi}×"


def _count(values):
    values = sorted(set(values))
    return f"{values[0]}" if len(values) == 1 else f"{values[0]}–{values[-1]}"


def machine_text(result):
    """Where and when the run was made: CPU, load, numpy's BLAS, the process settings."""
    cpu, np_ = result["machine"]["cpu"], result["machine"]["numpy"]
    simd = "AVX-512" if "avx512f" in cpu["simd"] else "AVX2" if "avx2" in cpu["simd"] else "no AVX2"
    blas = f"{np_.get('blas')} {np_.get('blas_version', '')}".rstrip()
    if np_.get("blas_kernel"):
        blas += f" ({np_['blas_kernel']} kernel)"
    share = [r["cpu_over_wall"] for r in result["rows"]]
    threads = sorted({r["blas_threads"] for r in result["rows"]}, key=str)
    threads = "one BLAS thread" if threads == [1] else f"BLAS threads {', '.join('unknown' if t is None else str(t) for t in threads)}"
    busy = min(share) < 0.95
    return (f"Measured on an {cpu['model']} ({simd}) with {cpu['logical_cpus']} logical CPUs, "
            f"{result['started'].replace('T', ' ')} to {result['finished'].split('T')[1]}, load "
            f"average (1 min) {result['load_average_before'][0]:.1f} before and "
            f"{result['load_average_after'][0]:.1f} after; numpy {np_['version']} on {blas}. Each point "
            f"ran in a process of its own with {threads}, bound to one CPU; CPU time / wall time of its "
            f"timed steps: {_spread(share).rstrip('×')} "
            + ("(below 1: other processes had that CPU part of the time)." if busy else
               "(the CPU was the steps' alone)."))


def claims(result):
    """The sentences about the table, each computed from the rows."""
    rows, bar = result["rows"], result.get("bar", BAR)
    compiled = [ratio(r, "tinygraph_compiled") for r in rows]
    best = [ratio(r, "tinygraph_compiled", "best_ms") for r in rows]
    eager = [ratio(r, "tinygraph") for r in rows]
    over = [run.point_text(r) + f" {r['dtype']}" for r, c in zip(rows, compiled) if c > bar]
    agreement = {}   # dtype -> largest difference from (b) of any step's loss or the final parameters
    for r in rows:
        for a in r["agreement"].values():
            agreement[r["dtype"]] = max(agreement.get(r["dtype"], 0.0), a["step_losses"], a["final_params"])
    checks = result["checks"]
    size = "({B}, {H}, {V}, {T})".format(**worker.CHECK_SIZE)
    return [
        f"Before timing, loss, gradients and two SGD steps of both tinygraph steps were compared with "
        f"(b)'s at (B, H, V, T) = {size}: largest relative difference "
        + " and ".join(f"{max(c[k] for k in run.DIFFERENCES):.0e} ({d})" for d, c in sorted(checks.items()))
        + ".",
        f"At the timed points every step's loss and the final parameters (after "
        f"{_count(r['steps_each'] for r in rows)} steps of each implementation on the same data) were "
        f"within " + " and ".join(f"{v:.0e} ({d})" for d, v in sorted(agreement.items())) + " of (b)'s.",
        f"compiled / (b) over the {len(rows)} rows: {_spread(compiled)} of the median step, {_spread(best)} "
        f"of the best ({'met' if not over else 'not met'}: ≤ {bar:g} at every row"
        + (f"; over it at {', '.join(over)}" if over else "") + ").",
        f"eager / (b): {_spread(eager)}; compiled / eager: {_spread([c / e for c, e in zip(compiled, eager)])}.",
    ]


BEGIN = ("<!-- mgu-claims {path}: generated by `python -m benchmarks.mgu --readme README.md` from that "
         "run; edit benchmarks/mgu.py, not this text -->")
END = "<!-- /mgu-claims -->"
BEGIN_PATTERN = re.compile(r"<!-- mgu-claims (\S+): .*? -->")


def section(result, path):
    """The README's generated block for the run saved at ``path``."""
    return "\n".join([BEGIN.format(path=path), "", machine_text(result), "", markdown(result), ""]
                     + [f"- {sentence}" for sentence in claims(result)] + ["", END])


def replace_in(text, load=None):
    """``text`` (a README) with its MGU block rewritten from the run its marker names."""
    match = BEGIN_PATTERN.search(text)
    if not match or END not in text[match.end():]:
        raise ValueError(f"benchmarks.mgu: no '<!-- mgu-claims PATH: ... -->' ... '{END}' block found")
    path = match.group(1)
    if load is None:
        with open(path) as file:
            result = json.load(file)
    else:
        result = load(path)
    end = text.index(END, match.end()) + len(END)
    return text[:match.start()] + section(result, path) + text[end:]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=run.parse_points, default=None,
                        help="(B,H,V,T) points instead of the default "
                             f"{';'.join(','.join(map(str, p)) for p in POINTS)}")
    parser.add_argument("--dtypes", default="float64,float32")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", default="benchmarks/results/mgu.json")
    parser.add_argument("--markdown", metavar="JSON", help="print the table of a saved run (runs nothing)")
    parser.add_argument("--readme", metavar="FILE",
                        help="rewrite FILE's generated block from the run its marker names (runs nothing)")
    parser.add_argument("--time-point", metavar="SPEC", help=argparse.SUPPRESS)   # the timing process
    args = parser.parse_args(argv)
    if args.time_point:
        worker.pin_to_current_cpu()
        from tinygraph_app.train import keep_freed_memory  # noqa: PLC0415
        keep_freed_memory()
        print(json.dumps(time_point(json.loads(args.time_point))))
        return 0
    if args.markdown:
        with open(args.markdown) as file:
            print(markdown(json.load(file)))
        return 0
    if args.readme:
        with open(args.readme) as file:
            text = replace_in(file.read())
        from tinygraph.io import write_bytes_atomic  # noqa: PLC0415
        write_bytes_atomic(args.readme, text.encode())
        return 0
    dtypes = args.dtypes.split(",")
    for dtype in dtypes:
        if dtype not in ("float64", "float32"):
            parser.error(f"--dtypes: unknown dtype {dtype!r}; expected float64 and/or float32, e.g. "
                         f"--dtypes float64")
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}")
    result = benchmark(args.points or POINTS, dtypes, args.rounds)
    from tinygraph.io import write_bytes_atomic  # noqa: PLC0415
    write_bytes_atomic(args.json, json.dumps(result, indent=1))
    print(markdown(result))
    print("\n".join(claims(result)))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
