"""A character-level language model on the embedded text (rnn_models/data), watched while it learns.

An untrained model spreads its probability evenly over the V characters of the vocabulary, so its
cross-entropy starts at ln V nats per character; the loss falls from there as the LSTM picks up
letter frequencies, then spelling, then words. Samples drawn at intervals show the same progression.
Finally one short training window is unrolled with its gate-level graph, backpropagated, and drawn
with every node coloured by ‖∂L/∂node‖ — the BPTT gradients of that window, painted on the graph.
"""
import math
import os

import numpy as np

import tinygraph as tg
import visualize
from rnn_models.models import CharRNN
from rnn_models.tasks import make_task
from rnn_models.training import Trainer, make_optimizer

from .common import Claim, Report, figure, save_svg, sci

NAME = "chars"
FULL = dict(cell="lstm", hidden=128, batch_size=32, seq_len=64, tbptt=32, lr=3e-3, clip=5.0, steps=1000,
            eval_every=100, sample_every=250, sample_length=160, temperature=0.7, window=4)
QUICK = dict(FULL, hidden=32, batch_size=16, seq_len=32, tbptt=16, lr=1e-2, steps=60, eval_every=20,
             sample_every=30, sample_length=40)
PROMPT = "The keeper "

# The samples are chaotic (one different draw changes the rest of the text); the losses are averages
# and move little across BLAS builds. The quick run trains 60 steps instead of 1000: it falls less.
CLAIMS = (
    Claim("starts uniform",
          "the untrained model is near uniform: its first training loss is within {bound:g} of ln V",
          lambda n: abs(n["first_loss"] - n["ln_vocab"]), "<", 0.1),
    Claim("learns",
          "the held-out loss ends over {bound:g} nats per character below ln V",
          lambda n: n["ln_vocab"] - n["eval"][-1]["loss"], ">", 2.0, quick=1.0),
)


def run(out_dir, quick=False, seed=0, log=print, jobs=1):
    """Train the character-level LSTM, sample from it and draw one window's gradients; write the SVGs
    and the table. Returns the ``Report``."""
    cfg = QUICK if quick else FULL
    task = make_task("chars")
    vocab_size = len(task.vocab)
    tg.manual_seed(seed)
    model = CharRNN(task.vocab, cfg["hidden"], cell=cfg["cell"])
    optimizer = make_optimizer("adam", model.parameters(), cfg["lr"])
    trainer = Trainer(model, task, optimizer, batch_size=cfg["batch_size"], seq_len=cfg["seq_len"],
                      tbptt=cfg["tbptt"], clip=cfg["clip"], seed=seed, eval_every=cfg["eval_every"])
    evals = [{"step": 0, **trainer.evaluate()}]
    samples = [(0, sample(model, cfg, seed))]
    while trainer.step < cfg["steps"]:
        trainer.train(min(cfg["sample_every"], cfg["steps"] - trainer.step))
        samples.append((trainer.step, sample(model, cfg, seed)))
        log(f"  step {trainer.step}: smoothed loss {trainer.smoothed_loss:.3f}")
    evals += trainer.history["eval"]
    history = trainer.history

    files = [f"{NAME}_loss.svg", f"{NAME}_unrolled.svg"]
    plot(history, evals, vocab_size, cfg, os.path.join(out_dir, files[0]))
    window_loss = draw_window(model, task, cfg["window"], os.path.join(out_dir, files[1]))

    eval_at = {e["step"]: e for e in evals}
    rows = []
    for step, text in samples:
        e = eval_at.get(step, {})
        rows.append([str(step), sci(history["smoothed_loss"][step - 1], 3) if step else "—",
                     sci(e["loss"], 3) if e else "—", f"{e['accuracy']:.1%}" if e else "—",
                     "`" + (PROMPT + text).replace("\n", " ⏎ ").replace("`", "'") + "`"])
    numbers = {"config": dict(cfg, seed=seed), "vocab_size": vocab_size, "ln_vocab": math.log(vocab_size),
               "first_loss": history["loss"][0], "final_smoothed_loss": history["smoothed_loss"][-1],
               "eval": evals, "samples": [{"step": s, "text": t} for s, t in samples],
               "window_loss": window_loss, "loss": history["loss"]}
    title = (f"Character-level {cfg['cell'].upper()} on the embedded text: loss from ln V = ln {vocab_size} "
             f"= {math.log(vocab_size):.3f} down")
    report = Report(
        NAME, title,
        ["step", "training loss (smoothed)", "held-out loss", "held-out accuracy",
         f"sample (temperature {cfg['temperature']:g})"], rows, numbers=numbers, files=files)
    report.notes = [
        f"{cfg['cell'].upper()} hidden {cfg['hidden']}, one-hot input, batch {cfg['batch_size']} × "
        f"{cfg['seq_len']} characters, truncated BPTT every {cfg['tbptt']} steps, Adam lr {cfg['lr']:g}, "
        f"clip_grad_norm_ {cfg['clip']:g}, seed {seed}; losses in nats per character.",
        f"first training batch {history['loss'][0]:.3f} (ln V = {math.log(vocab_size):.3f}), final smoothed "
        f"{history['smoothed_loss'][-1]:.3f}, held-out {evals[-1]['loss']:.3f}.",
        f"{files[1]}: the trained model on one {cfg['window']}-character window of held-out text, "
        f"gate-level graph, gradients painted (window loss {window_loss:.3f})."]
    return report


def sample(model, cfg, seed):
    """``cfg["sample_length"]`` characters the model writes after ``PROMPT``, at ``cfg["temperature"]``."""
    return model.sample(PROMPT, cfg["sample_length"], temperature=cfg["temperature"], seed=seed)


def draw_window(model, task, length, path):
    """Backpropagate one ``length``-character window of held-out text through the gate-level graph
    (``fused=False``: same numbers, every gate its own node) and draw it with gradients painted.
    The model's parameters are left as they were (gradients cleared). Returns the window's loss."""
    ids = task.val_ids[:length + 1, None]          # (length + 1, 1): inputs and next-character targets
    model.rnn.fused = False
    try:
        logits, _ = model(ids[:-1])
        with tg.scope("loss"):
            loss = task.loss(logits, ids[1:])
        graph = visualize.retain_all(loss)
        loss.backward()
    finally:
        model.rnn.fused = True
        model.zero_grad()
    text = "".join(task.vocab[i] for i in ids[:, 0])
    visualize.render(graph, path, level="op", grads=True,
                     title=f"one training window: {text[:-1]!r} -> {text[1:]!r}, loss {loss.item():.3f}")
    return loss.item()


def plot(history, evals, vocab_size, cfg, path):
    """Training loss (raw and smoothed) and held-out loss against steps, with ln V marked."""
    fig, (ax,) = figure(panels=1, width=7.5)
    steps = np.arange(1, len(history["loss"]) + 1)
    ax.plot(steps, history["loss"], color="C0", lw=0.6, alpha=0.4, label="training batch")
    ax.plot(steps, history["smoothed_loss"], color="C0", lw=1.8, label="training (smoothed)")
    ax.plot([e["step"] for e in evals], [e["loss"] for e in evals], color="C1", marker="o", ms=4,
            label="held-out text")
    ax.axhline(math.log(vocab_size), color="black", ls="--", lw=1, label=f"ln V = ln {vocab_size}")
    ax.set(xlabel="training step", ylabel="cross-entropy (nats per character)",
           title=f"character-level {cfg['cell'].upper()} (hidden {cfg['hidden']}) on the embedded text")
    return save_svg(fig, path)
