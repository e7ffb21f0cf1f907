"""The global random generator used for parameter initialisation and dropout.

``manual_seed(n)`` makes every later initialisation deterministic, as in PyTorch. Functions that take
an explicit ``rng`` (a ``np.random.Generator``) use it instead.
"""
import numpy as np

_generator = np.random.default_rng(0)


def manual_seed(seed):
    """Reset the global generator; returns it."""
    global _generator
    _generator = np.random.default_rng(seed)
    return _generator


def default_generator():
    """The global ``np.random.Generator``, as ``manual_seed`` last set it (seed 0 at import); read at
    each call, so it follows later ``manual_seed`` calls."""
    return _generator
