"""Long-term dependencies: the adding problem (Hochreiter & Schmidhuber 1997).

Each sequence has T steps of (value ~ U(0, 1), marker); the target, read only after the last step, is
the sum of the two marked values — one in the first half, one in the second — so the net must carry a
number across ~T/2 steps and ignore everything else. Predicting the constant 1.0 scores MSE = 1/6 ≈
0.167: the bar. A vanilla tanh RNN's gradient from the final loss vanishes long before it reaches the
first marker (see the ``gradients`` experiment) and it stays at the bar; LSTM and GRU, whose gated
state carries the gradient back, beat it by orders of magnitude.

The three cells train with the same settings (Adam, full BPTT, ``clip_grad_norm_``), the same seed and
the same batches; the MSE is measured on fixed held-out batches every ``eval_every`` steps.
"""
import os
import time


import tinygraph as tg
from rnn_models.models import build_model
from rnn_models.registry import CELL_KINDS
from rnn_models.tasks import make_task
from rnn_models.training import Trainer, make_optimizer

from .common import Claim, Report, figure, map_jobs, save_svg, sci

NAME = "adding"
CELLS = tuple(CELL_KINDS)
BASELINE = 1 / 6          # MSE of always predicting 1.0 = Var(U + U)
LEARNED = BASELINE / 10   # "beats the baseline by a wide margin": ten times lower
FULL = dict(seq_len=100, hidden=32, batch_size=32, lr=0.02, clip=1.0, steps=2000, eval_every=100,
            eval_batches=8)
# T = 20 and a larger learning rate: the gated cells escape the plateau within 500 steps, the RNN not
QUICK = dict(seq_len=20, hidden=16, batch_size=32, lr=0.03, clip=1.0, steps=500, eval_every=50,
             eval_batches=4)
STUCK = 0.1   # above this the RNN has not learned even the second marked value alone (MSE 1/12 ≈ 0.083)

# The vanilla RNN's training is chaotic: OpenBLAS's Haswell, Sandybridge and Nehalem kernels against
# SkylakeX moved its final MSE (0.204, 0.161, 0.167, 0.169) while its best stayed at 0.158 to 0.160 —
# at the baseline; its claim is a bound between remembering nothing (1/6) and remembering the second
# value only (1/12). The gated cells' numbers agreed to 11 digits across those kernels; their bound is
# the table's "ten times under the baseline".
CLAIMS = (
    Claim("LSTM learns",
          "the LSTM ends ten times under the baseline: final held-out MSE under {bound:.4f}",
          lambda n: n["lstm"]["final_mse"], "<", LEARNED),
    Claim("GRU learns",
          "the GRU ends ten times under the baseline: final held-out MSE under {bound:.4f}",
          lambda n: n["gru"]["final_mse"], "<", LEARNED),
    Claim("RNN stays at the baseline",
          "the vanilla RNN's held-out MSE stays above {bound:g} at every evaluation, short even of "
          "remembering only the second value (MSE 1/12)",
          lambda n: n["rnn"]["best_mse"], ">", STUCK),
)


def train(cell, cfg, seed):
    """Train one cell on the adding problem; returns ``{"eval": [{"step", "loss", "accuracy"}, ...],
    "loss": [training loss per step], "seconds": wall time}`` (evaluation at step 0 included)."""
    begin = time.perf_counter()
    task = make_task("adding")
    tg.manual_seed(seed)
    model = build_model(task.model_config(cell, cfg["hidden"]))
    if cell == "lstm":  # the usual forget-gate bias of 1 (Gers et al. 2000; Jozefowicz et al. 2015)
        H = cfg["hidden"]
        model.rnn.bias_ih_l0.data[H:2 * H], model.rnn.bias_hh_l0.data[H:2 * H] = 1.0, 0.0
    optimizer = make_optimizer("adam", model.parameters(), cfg["lr"])
    trainer = Trainer(model, task, optimizer, batch_size=cfg["batch_size"], seq_len=cfg["seq_len"],
                      clip=cfg["clip"], seed=seed, eval_every=cfg["eval_every"],
                      eval_batches=cfg["eval_batches"])
    first = {"step": 0, **trainer.evaluate()}
    trainer.train(cfg["steps"])
    return {"eval": [first] + trainer.history["eval"], "loss": trainer.history["loss"],
            "seconds": time.perf_counter() - begin}


def run(out_dir, quick=False, seed=0, log=print, jobs=1):
    """Train RNN, LSTM and GRU on the adding problem; write ``adding.svg`` and the table. Returns the
    ``Report``."""
    cfg = QUICK if quick else FULL
    results = dict(zip(CELLS, map_jobs(train, [(cell, cfg, seed) for cell in CELLS], jobs)))
    numbers, rows = {"config": dict(cfg, seed=seed), "baseline": BASELINE}, []
    for cell, result in results.items():
        evals = result["eval"]
        learned = [e["step"] for e in evals if e["loss"] < LEARNED]
        numbers[cell] = dict(final_mse=evals[-1]["loss"], best_mse=min(e["loss"] for e in evals),
                             final_accuracy=evals[-1]["accuracy"],
                             first_step_below_baseline_over_10=learned[0] if learned else None,
                             eval_steps=[e["step"] for e in evals], eval_mse=[e["loss"] for e in evals],
                             eval_accuracy=[e["accuracy"] for e in evals])
        n = numbers[cell]
        rows.append([cell.upper(), sci(evals[0]["loss"], 3), sci(n["final_mse"], 3),
                     f"{BASELINE / n['final_mse']:.1f}×", f"{n['final_accuracy']:.1%}",
                     "never" if learned == [] else str(learned[0])])
        log(f"  {cell}: held-out MSE {rows[-1][1]} -> {rows[-1][2]} in {cfg['steps']} steps "
            f"({result['seconds']:.0f} s)")
    path = os.path.join(out_dir, f"{NAME}.svg")
    plot(results, cfg, path)
    winners = [c.upper() for c in CELLS if numbers[c]["final_mse"] < LEARNED]
    report = Report(
        NAME, f"Adding problem, T = {cfg['seq_len']}: held-out MSE against training steps",
        ["cell", "MSE at step 0", f"MSE at step {cfg['steps']}", "baseline / MSE",
         "accuracy (abs. error < 0.04)", f"first eval with MSE < {LEARNED:.3f}"],
        rows, numbers=numbers, files=[os.path.basename(path)])
    report.notes = [
        f"hidden {cfg['hidden']}, batch {cfg['batch_size']}, Adam lr {cfg['lr']:g}, full BPTT, "
        f"clip_grad_norm_ {cfg['clip']:g}, {cfg['steps']} steps, seed {seed}; LSTM forget-gate bias 1; "
        f"MSE on {cfg['eval_batches']} fixed held-out batches every {cfg['eval_every']} steps; "
        f"baseline (predict 1.0): MSE {BASELINE:.3f}.",
        f"ten times below the baseline at the end: {', '.join(winners) if winners else 'none'}."]
    return report


def plot(results, cfg, path):
    """Held-out MSE (log scale, with the baseline) and accuracy against training steps, per cell."""
    fig, (left, right) = figure(panels=2)
    for k, (cell, result) in enumerate(results.items()):
        steps = [e["step"] for e in result["eval"]]
        left.plot(steps, [e["loss"] for e in result["eval"]], color=f"C{k}", marker="o", ms=3,
                  label=cell.upper())
        right.plot(steps, [e["accuracy"] for e in result["eval"]], color=f"C{k}", marker="o", ms=3,
                   label=cell.upper())
    left.axhline(BASELINE, color="black", ls="--", lw=1, label="baseline: predict 1.0 (1/6)")
    left.set(yscale="log", xlabel="training step", ylabel="held-out MSE",
             title=f"adding problem, T = {cfg['seq_len']}")
    right.set(ylim=(0, 1.02), xlabel="training step", ylabel="fraction with |error| < 0.04",
              title="accuracy")
    return save_svg(fig, path)
