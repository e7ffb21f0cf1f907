"""One benchmark measurement in a fresh process: ``python -m benchmarks.worker '<json spec>'``.

Prints one JSON line, one of:

- timing: per-step wall times (ms) after warm-up, the first warm-up step's time, the CPU time the
  process spent over the timed steps divided by their wall time (``cpu_over_wall``: at most 1.0
  when one core did the work, whatever the number of threads), the threads that did it, and for
  JAX the compile time (``compile_ms``, not part of any step);
- ``memory``: the peak traced memory of one step;
- ``check`` ([[cell, dtype], ...]): per cell and dtype, this implementation's loss and gradients, and
  its parameters after two training steps, against the hand-written numpy BPTT (b) on a small problem.

Thread counts are pinned by the parent through the environment before numpy/torch/jax load, and with
``pin`` the process binds itself to the one CPU it started on before loading any of them: XLA's CPU
runtime sizes its thread pools by the CPUs a process may use and ignores the thread flags of older
versions (measured with jax 0.10.2: two threads computing one matmul with
``--xla_cpu_multi_thread_eigen=false``), so the binding is what keeps JAX to one core.
"""
import json
import os
import sys
import time
import tracemalloc

CHECK_SIZE = dict(B=3, H=5, V=4, T=6)
CHECK_TOL = {"float64": 1e-10, "float32": 1e-4}


def pin_to_current_cpu():
    """Bind this process to the CPU it is running on; returns that CPU (None where unsupported)."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    try:
        with open("/proc/self/stat") as file:
            cpu = int(file.read().rsplit(")", 1)[1].split()[36])  # field 39, "processor"
    except (OSError, IndexError, ValueError):
        cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


def thread_ticks():
    """{thread id: user + system clock ticks} of this process's threads (Linux; else {})."""
    ticks = {}
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return ticks
    for tid in tids:
        try:
            with open(f"/proc/self/task/{tid}/stat") as file:
                fields = file.read().rsplit(")", 1)[1].split()
            ticks[tid] = int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return ticks


def make(spec):
    """step_fn(x, targets) -> loss for the spec's implementation, and extra facts to report."""
    from . import baselines
    impl = spec["impl"]
    args = (spec["cell"], spec["dtype"], spec["B"], spec["H"], spec["V"], spec["T"], spec["seed"])
    if impl in ("tinygraph", "tinygraph_compiled"):
        from . import tinygraph_impl
        model, step = tinygraph_impl.make_step(*args, compiled=impl == "tinygraph_compiled")
        return step, {}, lambda: {n.removeprefix("rnn."): p.data for n, p in model.named_parameters()}
    if impl == "jax":
        from . import jax_impl
        state, step, compile_ms = jax_impl.make_step(*args)
        return step, {"compile_ms": compile_ms}, lambda: {n: __import__("numpy").asarray(p)
                                                          for n, p in state["params"].items()}
    if impl in baselines.TORCH_IMPLS:
        import torch
        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    params, step = baselines.make_step(impl, *args)
    return step, {}, lambda: baselines.params_to_numpy(params)


def loss_and_grads(impl, cell, params, x, targets):
    """(loss, grads) of one implementation, parameters unchanged."""
    from . import baselines
    if impl in ("tinygraph", "tinygraph_compiled"):
        from . import tinygraph_impl
        return tinygraph_impl.loss_and_grads(cell, params, x, targets)
    if impl == "jax":
        from . import jax_impl
        return jax_impl.loss_and_grads(cell, params, x, targets)
    return baselines.loss_and_grads(impl, cell, params, x, targets)


def check(spec):
    """Largest differences from (b): loss, gradients, and losses and parameters over two steps.
    Differences are absolute, divided by max(1, |reference|)."""
    import numpy as np

    from . import baselines
    cell, dtype, size = spec["cell"], spec["dtype"], CHECK_SIZE
    params = baselines.init_params(cell, size["H"], size["V"], spec["seed"], dtype)
    x, targets = baselines.make_data(size["B"], size["V"], size["T"], spec["seed"] + 1, dtype)

    def diff(a, b):
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        return float(np.max(np.abs(a - b) / np.maximum(1, np.abs(b))))
    out = {}
    if spec["impl"] != "tinygraph_compiled":  # the compiled step has no separate gradient entry
        loss_ref, grads_ref = baselines.loss_and_grads("numpy_per_step", cell, params, x, targets)
        loss, grads = loss_and_grads(spec["impl"], cell, params, x, targets)
        out["loss"] = diff(loss, loss_ref)
        out["grads"] = max(diff(grads[n], grads_ref[n]) for n in baselines.PARAM_NAMES)
        out["grad_dtypes_ok"] = all(np.asarray(g).dtype == np.dtype(dtype) for g in grads.values())
    ref_params, ref_step = baselines.make_step("numpy_per_step", cell, dtype, seed=spec["seed"], **size)
    step, _, current = make(dict(spec, **size))
    losses = [(step(x, targets), ref_step(x, targets)) for _ in range(2)]
    out["step_losses"] = max(diff(a, b) for a, b in losses)
    out["step_params"] = max(diff(current()[n], ref_params[n]) for n in baselines.PARAM_NAMES)
    out["tol"] = CHECK_TOL[dtype]
    out["ok"] = out.get("grad_dtypes_ok", True) and all(
        out[k] <= out["tol"] for k in ("loss", "grads", "step_losses", "step_params") if k in out)
    return out


def main(spec):
    cpu = pin_to_current_cpu() if spec.get("pin") else None
    from .baselines import init_params, make_data
    if spec.get("keep_freed_memory"):
        from tinygraph_app.train import keep_freed_memory
        keep_freed_memory()
    if spec.get("check"):
        return {f"{cell}/{dtype}": check(dict(spec, cell=cell, dtype=dtype))
                for cell, dtype in spec["check"]}
    if spec.get("memory"):
        # The peak of a steady-state step: the second call, counting what the implementation keeps
        # between steps (numpy's workspaces, made by make_step; a compiled plan's input buffers and
        # slabs, made by its first call, the trace) and what the step allocates (tinygraph's graph);
        # the data and the parameters, which every implementation holds alike, do not count. A tiny
        # run first, so imports and caches are not counted.
        tiny = dict(spec, T=2, B=1)
        make(tiny)[0](*make_data(1, spec["V"], 2, 0, spec["dtype"]))
        tracemalloc.start()
        step = make(spec)[0]
        x, targets = make_data(spec["B"], spec["V"], spec["T"], spec["seed"] + 1, spec["dtype"])
        step(x, targets)
        first = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        step(x, targets)
        shared = x.nbytes + targets.nbytes + sum(
            a.nbytes for a in init_params(spec["cell"], spec["H"], spec["V"], 0, spec["dtype"]).values())
        peak = tracemalloc.get_traced_memory()[1] - shared
        tracemalloc.stop()
        return {"peak_bytes": peak, "first_call_peak_bytes": first - shared}
    step, extra, _ = make(spec)
    x, targets = make_data(spec["B"], spec["V"], spec["T"], spec["seed"] + 1, spec["dtype"])
    first_ms = None
    start = time.perf_counter()
    k = 0
    while k < spec["warmup"] or time.perf_counter() - start < spec.get("warmup_seconds", 0):
        t0 = time.perf_counter()
        step(x, targets)
        if k == 0:
            first_ms = (time.perf_counter() - t0) * 1e3
        k += 1
    times = []
    ticks0, cpu0, wall0 = thread_ticks(), time.process_time(), time.perf_counter()
    # at least ``steps`` steps and ``seconds`` of them (at most ``max_steps``): a round of 20 steps of
    # 0.2 ms would sample 4 ms of a host whose speed changes in phases of a few hundred ms
    seconds, most = spec.get("seconds", 0), spec.get("max_steps", spec["steps"])
    while len(times) < spec["steps"] or (time.perf_counter() - wall0 < seconds and len(times) < most):
        t0 = time.perf_counter()
        step(x, targets)
        times.append((time.perf_counter() - t0) * 1e3)
    cpu_over_wall = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
    ticks1 = thread_ticks()
    used = sorted((ticks1[t] - ticks0.get(t, 0) for t in ticks1), reverse=True)
    total = sum(used) or 1
    return dict(extra, ms=times, first_ms=first_ms, cpu_over_wall=cpu_over_wall, pinned_cpu=cpu,
                cpus_allowed=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
                threads_working=sum(1 for u in used if u >= 0.05 * total))


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
