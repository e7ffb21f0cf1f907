"""One benchmark measurement in a fresh process: ``python -m benchmarks.worker '<json spec>'``.

Prints one JSON line: per-step wall times (ms) after warm-up, or the peak traced memory of one step.
Thread counts are pinned by the parent through the environment before numpy/torch load.
"""
import json
import os
import sys
import time
import tracemalloc


def make(spec):
    from . import baselines
    args = (spec["cell"], spec["dtype"], spec["B"], spec["H"], spec["V"], spec["T"], spec["seed"])
    if spec["impl"] == "tinygraph":
        from . import tinygraph_impl
        return tinygraph_impl.make_step(*args)[1]
    if spec["impl"] in baselines.TORCH_IMPLS:
        import torch
        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    return baselines.make_step(spec["impl"], *args)[1]


def main(spec):
    from .baselines import init_params, make_data
    if spec.get("keep_freed_memory"):
        from tinygraph_app.train import keep_freed_memory
        keep_freed_memory()
    if spec.get("memory"):
        # Everything the step allocates counts (numpy workspaces are allocated by make_step and
        # reused, tinygraph's graph is built during the step); the data and the parameters, which
        # every implementation holds alike, do not. A tiny run first, so imports and caches are not
        # counted.
        tiny = dict(spec, T=2, B=1)
        make(tiny)(*make_data(1, spec["V"], 2, 0, spec["dtype"]))
        tracemalloc.start()
        step = make(spec)
        x, targets = make_data(spec["B"], spec["V"], spec["T"], spec["seed"] + 1, spec["dtype"])
        step(x, targets)
        shared = x.nbytes + targets.nbytes + sum(
            a.nbytes for a in init_params(spec["cell"], spec["H"], spec["V"], 0, spec["dtype"]).values())
        peak = tracemalloc.get_traced_memory()[1] - shared
        tracemalloc.stop()
        return {"peak_bytes": peak}
    step = make(spec)
    x, targets = make_data(spec["B"], spec["V"], spec["T"], spec["seed"] + 1, spec["dtype"])
    for _ in range(spec["warmup"]):
        step(x, targets)
    times = []
    for _ in range(spec["steps"]):
        t0 = time.perf_counter()
        step(x, targets)
        times.append((time.perf_counter() - t0) * 1e3)
    return {"ms": times}


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
