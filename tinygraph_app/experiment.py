"""Reproduce the textbook claims about recurrent nets with measured numbers and pictures.

Experiments: gradients (vanishing/exploding gradients: linear and tanh RNN at spectral radius ρ, LSTM),
clipping (a large-ρ RNN trained with and without clip_grad_norm_), adding (the adding problem: LSTM
and GRU against a vanilla RNN), chars (a character-level LSTM on the embedded text). Each writes its
SVGs plus a table (<name>.md, <name>.json) into --out and prints the table, with the experiment's
claims, each with its measured value and ✓ or ✗ (exit status 1 if one fails). Reproducible:
bit-identical files with the same seed on one BLAS build; across builds the claims hold within their
stated tolerances.

Examples:
  tinygraph experiment all --out docs/experiments
  tinygraph experiment gradients --quick
"""
import os
import sys

from rnn_models.training import set_default_compile

from .experiments import EXPERIMENTS, run_experiment
from .extras import require, require_dot
from .limits import SEED, integer
from .train import configure_runtime

JOBS = integer(1, 64)


def add_arguments(parser):
    """Add the ``tinygraph experiment`` flags to the argparse ``parser``."""
    parser.add_argument("name", choices=list(EXPERIMENTS) + ["all"], help="which experiment, or all")
    parser.add_argument("--quick", action="store_true",
                        help="the scaled-down version (seconds, not minutes), as run by the tests")
    parser.add_argument("--out", default=os.path.join("out", "experiments"), metavar="DIR",
                        help="output directory")
    parser.add_argument("--seed", type=SEED, default=0, help=f"random seed, {SEED.text}")
    parser.add_argument("--no-compile", action="store_true",
                        help="run every training step eagerly instead of replaying it as a traced plan "
                             "(tg.compile; same numbers, bit for bit), to compare")
    parser.add_argument("--jobs", type=JOBS, default=min(2, os.cpu_count() or 1),
                        help=f"processes for independent training runs, {JOBS.text} (default: "
                             f"{min(2, os.cpu_count() or 1)}, the cores up to 2)")


def run(args):
    """Run ``tinygraph experiment`` with the parsed ``args``; returns the exit code."""
    configure_runtime(1)   # many small matrix products: BLAS threads only add synchronisation
    set_default_compile(not args.no_compile)   # forked workers inherit it
    names = list(EXPERIMENTS) if args.name == "all" else [args.name]
    require("matplotlib", "plot", "every experiment")   # each one plots its results
    if "chars" in names:   # it also draws a training window's graph
        others = ", ".join(name for name in EXPERIMENTS if name != "chars")
        require_dot("experiment chars (its picture of a training window)",
                    instead=f"run the other experiments ({others})")
    total, failed = 0.0, []
    for name in names:
        print(f"== {name}{' (quick)' if args.quick else ''}", flush=True)
        report, seconds = run_experiment(name, args.out, quick=args.quick, seed=args.seed,
                                         log=lambda line: print(line, flush=True), jobs=args.jobs)
        total += seconds
        failed += [f"{name}: {verdict['claim']}" for verdict in report.claims if not verdict["holds"]]
        print(report.markdown())
        print(f"{name}: {seconds:.1f} s, wrote {', '.join(report.files + [name + '.md', name + '.json'])} "
              f"in {args.out}\n", flush=True)
    if len(names) > 1:
        print(f"all experiments: {total:.1f} s")
    if failed:
        print(f"experiment: {len(failed)} claim(s) not borne out by this run: " + "; ".join(failed),
              file=sys.stderr)
        return 1
    return 0
