"""The textbook claims about recurrent nets, reproduced with measured numbers and pictures.

Each experiment is a module with ``run(out_dir, quick=False, seed=0, log=print, jobs=1) -> Report``: it
writes its SVGs into ``out_dir`` and returns a ``Report`` (a table, notes and the raw numbers), which
``run_experiment`` also writes there as ``<name>.md`` and ``<name>.json``. ``quick=True`` is a scaled-down
version (seconds instead of minutes) that still shows the qualitative result; the tests run it.

Each module declares ``CLAIMS``: the results it states, each a ``common.Claim`` with its tolerance for
the full-size and the quick run; ``run_experiment`` checks them on the run's numbers and the report
lists them with the measured value and ✓ or ✗. What is reproducible: the files are bit-identical
with the same seed on one BLAS build; across builds (another kernel rounds differently, and a
training run amplifies that) the claims hold within their tolerances.

=============  ==========================================================================================
gradients      ‖∂L_T/∂h_t‖ against T−t: linear RNN (rate exactly ρ), tanh RNN (rate ≤ ρ), LSTM
clipping       a ρ = 2 tanh RNN trained with and without clip_grad_norm_: loss and gradient-norm traces
adding         the adding problem at T = 100: LSTM and GRU beat the 1/6 baseline, a vanilla RNN does not
chars          a character-level LSTM: loss from ln V down, samples, one window's graph with gradients
=============  ==========================================================================================
"""
import os
import time

from . import adding, chars, clipping, gradients
from .common import check_claims as _check_claims

__all__ = ["EXPERIMENTS", "run_experiment"]

EXPERIMENTS = {module.NAME: module for module in (gradients, clipping, adding, chars)}
"""``{name: module}`` of the experiments, in the order ``tinygraph experiment all`` runs them."""


def run_experiment(name, out_dir, quick=False, seed=0, log=print, jobs=1):
    """Run experiment ``name``, check its claims and write its pictures and table into ``out_dir``.

    Returns ``(report, seconds)``; ``report.claims`` holds the claims' verdicts.
    """
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; choose one of {', '.join(EXPERIMENTS)} or all")
    os.makedirs(out_dir, exist_ok=True)
    begin = time.perf_counter()
    module = EXPERIMENTS[name]
    report = module.run(out_dir, quick=quick, seed=seed, log=log, jobs=jobs)
    report.claims = _check_claims(module.CLAIMS, report.numbers, quick)
    report.write(out_dir)
    return report, time.perf_counter() - begin
