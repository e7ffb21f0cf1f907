"""What a benchmark ran on: CPU, cores, load, and the BLAS behind numpy and torch, jax/XLA versions.

``describe()`` returns a JSON-ready dict; the run saves it and the README's statement of the machine
is generated from it (``benchmarks.claims``). Run as ``python -m benchmarks.machine`` to print it.
threadpoolctl lists every BLAS loaded in the process (torch may bring its own); numpy's is the one
under numpy's directory.
"""
import json
import os
import platform

def numpy_info():
    """numpy's version, its BLAS (build configuration) and, with threadpoolctl, the BLAS library
    loaded in this process next to numpy and the kernel it picked for this CPU."""
    import numpy as np  # noqa: PLC0415
    out = {"version": np.__version__}
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        out.update(blas=blas.get("name"), blas_version=blas.get("version"),
                   blas_configuration=blas.get("openblas configuration"))
    except Exception as error:  # noqa: BLE001 - older numpy has no dict mode; say so, go on
        out["blas"] = f"unknown ({type(error).__name__})"
    try:
        import threadpoolctl  # noqa: PLC0415
    except ImportError:
        out["blas_kernel"] = "unknown (threadpoolctl not installed)"
        return out
    numpy_dir = os.path.dirname(os.path.dirname(np.__file__))
    libs = [i for i in threadpoolctl.threadpool_info() if i.get("user_api") == "blas"]
    # torch may load a BLAS of its own into the same process: prefer the one shipped with numpy
    libs.sort(key=lambda i: not (i.get("filepath") or "").startswith(os.path.join(numpy_dir, "numpy")))
    if libs:
        out.update(blas_library=libs[0].get("internal_api"), blas_kernel=libs[0].get("architecture"),
                   blas_threading=libs[0].get("threading_layer"))
    return out


def torch_info():
    """torch's version, BLAS and LAPACK (``torch.__config__.show()``), or None without torch."""
    try:
        import torch  # noqa: PLC0415
    except ImportError:
        return None
    show = torch.__config__.show()
    settings = {}
    for line in show.splitlines():
        if "Build settings:" in line:
            for item in line.split("Build settings:", 1)[1].split(","):
                key, _, value = item.strip().partition("=")
                settings[key] = value
    capability = [line.split(":", 1)[1].strip() for line in show.splitlines()
                  if "CPU capability usage" in line]
    return {"version": torch.__version__, "blas": settings.get("BLAS_INFO"),
            "lapack": settings.get("LAPACK_INFO"), "mkldnn": torch.backends.mkldnn.is_available(),
            "cpu_capability": capability[0] if capability else None}


def cpu():
    """{'model', 'flags' (the SIMD ones), 'logical_cpus', 'usable_cpus'} from /proc/cpuinfo."""
    model, flags = platform.processor() or platform.machine(), []
    try:
        with open("/proc/cpuinfo") as file:
            for line in file:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = [f for f in value.split() if f in ("sse4_2", "avx", "avx2", "fma",
                                                               "avx512f", "avx512_vnni", "amx_tile")]
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"model": model, "simd": flags, "logical_cpus": os.cpu_count(), "usable_cpus": usable}


def jax_info():
    """jax's and jaxlib's versions from their package metadata, or None without jax. jax itself is
    not imported: once loaded, its threads make a later fork of this process unsafe."""
    from importlib import metadata  # noqa: PLC0415
    try:
        return {"jax": metadata.version("jax"), "jaxlib": metadata.version("jaxlib"),
                "backend": "cpu"}  # the workers run with JAX_PLATFORMS=cpu
    except metadata.PackageNotFoundError:
        return None


def describe():
    """The machine and the libraries, as saved with a run."""
    return {"cpu": cpu(), "python": platform.python_version(), "platform": platform.platform(),
            "numpy": numpy_info(), "torch": torch_info(), "jax": jax_info()}


if __name__ == "__main__":
    print(json.dumps(describe(), indent=1))
