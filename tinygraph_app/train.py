"""Train a recurrent model on a task with embedded data (nothing is downloaded).

Tasks: chars (character-level language model on the shipped text), adding (the adding problem),
copy (the copy/memory task), sine (next-value prediction). With --save the model, optimiser and trainer
state go to an .npz checkpoint (written atomically, no pickle); --resume continues from it, so training
k steps, saving and resuming for N-k steps gives the same parameters as training N steps.

Work is never lost: the --save path is checked before the first step; a NaN/inf loss or gradient stops
training with an error naming the step (exit code 2) and leaves the last checkpoint as it was, unless
--skip-nonfinite skips such updates; a checkpoint with NaN/inf values is never written; Ctrl-C stops
after the step in progress, saves a final checkpoint (with --save) and exits with code 130 (a second
Ctrl-C stops at once, without saving).

On a terminal the progress is a bar on stderr (steps/s, time left, losses) with each evaluation as a
line above it; elsewhere (a pipe, a log file) it is a plain line every --log-every steps.

Examples:
  tinygraph train --task chars --cell lstm --hidden 128 --steps 500 --tbptt 32 --save ckpt.npz
  tinygraph train --task chars --cell lstm --hidden 128 --steps 200 --tbptt 32 --save ckpt.npz --resume
  tinygraph train --task adding --cell gru --seq-len 50 --hidden 32 --lr 0.01 --clip 1
  tinygraph train --task sine --cell rnn --steps 300 --quiet
"""
import contextlib
import ctypes
import signal
import sys
import threading

import numpy as np

import tinygraph as tg
from rnn_models.checkpoint import (CheckpointError, NonFiniteError, check_config, load_checkpoint, restore,
                                   save_checkpoint)
from rnn_models.models import CharRNN, build_model
from rnn_models.tasks import TASKS, make_task
from rnn_models.training import OPTIMIZERS, Trainer, make_optimizer
from tinygraph.io import check_writable

from .cells import HELP as CELL_HELP
from .cells import cell_spec
from .limits import SEED, THREADS, integer, number
from .progress import Progress

# A resumed run must match the checkpoint in these config entries (the rest may change, e.g. --lr).
RESUME_KEYS = ("task", "model", "optimizer")


# The flags' ranges (each refused outside it in one line naming the range; see limits). The sizes
# are marked size=True: a MemoryError names them. Any one at its bound, the rest at their defaults,
# fits a laptop.
HIDDEN = integer(1, 2048, size=True)
LAYERS = integer(1, 8, size=True)
SEQ_LEN = integer(1, 10_000, size=True)
BATCH_SIZE = integer(1, 4096, size=True)
positive_int = integer(1, 1_000_000)     # counts and intervals: steps, --eval-every, ...
positive_float = number(0, 1e6)          # a positive finite number: --clip
LEARNING_RATE = number(0, 10)


def configure_runtime(threads):
    """Before training: ``threads`` BLAS threads, and freed memory kept for reuse."""
    limit_blas_threads(threads)
    keep_freed_memory()


def keep_freed_memory():
    """Tell glibc's malloc to keep freed memory for reuse (best effort; Linux/glibc only).

    A training step builds its graph (tens of MB) and frees it in backward. By default glibc returns
    blocks over 128 KB and the top of the heap to the kernel, so every step page-faults its whole
    graph in again: without this, steps in the project's benchmark took up to 1.24x as long (the RNN
    at (32, 128, 64, 50); 1.00-1.05x at the other float32 points measured). The cost is that the
    process keeps its peak heap instead of shrinking between steps.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # from <malloc.h>
    return bool(mallopt(m_mmap_threshold, 2**30)) and bool(mallopt(m_trim_threshold, 2**31 - 1))


def limit_blas_threads(threads):
    """Set OpenBLAS's thread count at run time (best effort; Linux). An RNN multiplies many small
    matrices, where BLAS threads cost more in synchronisation than they save — on a busy 2-core
    machine 2 threads made training ~10x slower than 1."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower() and "/" in line}
    except OSError:
        return False
    for path in sorted(paths):
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for symbol in ("openblas_set_num_threads", "openblas_set_num_threads64_",
                       "scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads"):
            setter = getattr(library, symbol, None)
            if setter is not None:
                setter(ctypes.c_int(threads))
                return True
    return False


def add_arguments(parser):
    """Add the ``tinygraph train`` flags to the argparse ``parser``."""
    parser.add_argument("--task", choices=sorted(TASKS), default="chars", help="what to learn")
    parser.add_argument("--cell", type=cell_spec, default="lstm", help=CELL_HELP)
    parser.add_argument("--hidden", type=HIDDEN, default=64, help=f"hidden size, {HIDDEN.text}")
    parser.add_argument("--layers", type=LAYERS, default=1, help=f"stacked layers, {LAYERS.text}")
    parser.add_argument("--seq-len", type=SEQ_LEN, default=None,
                        help=f"time steps per sequence, {SEQ_LEN.text} (default: the task's)")
    parser.add_argument("--batch-size", type=BATCH_SIZE, default=None,
                        help=f"sequences per batch, {BATCH_SIZE.text} (default: the task's)")
    parser.add_argument("--steps", type=positive_int, default=200,
                        help=f"training batches to run, {positive_int.text}")
    parser.add_argument("--tbptt", type=SEQ_LEN, default=None,
                        help=f"truncated BPTT: update every K steps, backpropagating K steps, "
                             f"{SEQ_LEN.text} (default: full BPTT over --seq-len)")
    parser.add_argument("--clip", type=positive_float, default=5.0,
                        help=f"max gradient norm, {positive_float.text}")
    parser.add_argument("--optim", choices=sorted(OPTIMIZERS), default="adam", help="optimiser")
    parser.add_argument("--lr", type=LEARNING_RATE, default=3e-3, help=f"learning rate, {LEARNING_RATE.text}")
    parser.add_argument("--seed", type=SEED, default=0, help=f"random seed, {SEED.text}")
    parser.add_argument("--eval-every", type=positive_int, default=None,
                        help=f"evaluate every N steps, {positive_int.text} (default: steps/5)")
    parser.add_argument("--log-every", type=positive_int, default=None,
                        help=f"progress line every N steps when not on a terminal, {positive_int.text} "
                             f"(default: steps/20)")
    parser.add_argument("--save", metavar="PATH",
                        help="write a checkpoint (.npz, or .safetensors) here at the end (default: none, "
                             "nothing is saved)")
    parser.add_argument("--save-every", type=positive_int, default=None,
                        help=f"also save every N steps, {positive_int.text} (default: only at the end)")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint at --save")
    parser.add_argument("--threads", type=THREADS, default=1, help=f"BLAS threads, {THREADS.text}")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or lines")
    parser.add_argument("--skip-nonfinite", action="store_true",
                        help="skip (and count) an update whose loss or gradient is NaN/inf, instead of "
                             "stopping with an error")
    parser.add_argument("--no-compile", action="store_true",
                        help="run every training step eagerly instead of replaying it as a traced plan "
                             "(tg.compile; same numbers, bit for bit), to compare")


def run(args):
    """Run ``tinygraph train`` with the parsed ``args``; returns the exit code."""
    if args.resume and args.save is None:
        raise ValueError("--resume needs --save PATH (the checkpoint to continue from and to update)")
    if args.save is not None:
        try:
            check_writable(args.save)
        except ValueError as exc:
            raise ValueError(f"--save {args.save!r}: {exc}") from None
    configure_runtime(args.threads)
    trainer, config = setup(args)
    model, task = trainer.model, trainer.task
    if args.resume:
        resume(trainer, config, args.save)
    saved = Saved(args.save, trainer.step if args.resume else None,
                  fix=f"Lower --lr (now {args.lr:g}) or --clip")
    print(f"training {type(model).__name__} ({args.cell}, hidden {args.hidden}, layers {args.layers}, "
          f"{model.num_parameters()} parameters) on task {task.name!r} from step {trainer.step}")
    skipped_before = trainer.skipped_updates
    save_every = args.save_every or args.steps
    remaining = args.steps
    try:
        # the Trainer checks every loss and gradient itself: numpy's overflow warnings would only repeat it
        with stop_on_interrupt(trainer), trainer.log or contextlib.nullcontext(), \
                np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            while remaining and not trainer.stop_requested:
                chunk = min(save_every, remaining)
                try:
                    trainer.train(chunk)
                except NonFiniteError as exc:
                    raise NonFiniteError(f"{exc.finding}; training stopped before that update was applied. "
                                         f"{saved.status()} {saved.fix}, or pass --skip-nonfinite to skip "
                                         f"such updates") from None
                remaining -= chunk
                if args.save and not trainer.stop_requested:
                    saved.write(trainer, config)
    except KeyboardInterrupt:
        # a second Ctrl-C (stop_requested already set) means "now, without saving"
        return interrupted(trainer, saved, config, save=not trainer.stop_requested)
    if trainer.stop_requested:
        return interrupted(trainer, saved, config)
    skipped = trainer.skipped_updates - skipped_before
    if skipped:
        print(f"skipped {skipped} update{'s' if skipped > 1 else ''} with a non-finite loss or gradient "
              f"(--skip-nonfinite)")
    if args.save:
        print(f"saved checkpoint {args.save} (step {trainer.step})")
    if isinstance(model, CharRNN):
        print("sample:", repr(model.sample(model.vocab[0] if "\n" not in model.vocab else "\n", 200,
                                           temperature=0.8, seed=args.seed)))
    return 0


def setup(args):
    """The trainer (model, task, optimiser) and the config that checkpoints record, from the arguments."""
    task = make_task(args.task)
    tg.manual_seed(args.seed)
    model = build_model(task.model_config(args.cell, args.hidden, args.layers))
    optimizer = make_optimizer(args.optim, model.parameters(), args.lr)
    log = None if args.quiet else Progress(args.steps, every=args.log_every or max(1, args.steps // 20))
    trainer = Trainer(model, task, optimizer, batch_size=args.batch_size, seq_len=args.seq_len,
                      tbptt=args.tbptt, clip=args.clip, seed=args.seed, log=log,
                      eval_every=args.eval_every or max(1, args.steps // 5),
                      skip_nonfinite=args.skip_nonfinite, compile=not args.no_compile)
    config = {"task": task.config(), "model": model.config(), "optimizer": args.optim, "lr": args.lr,
              "clip": args.clip, "tbptt": args.tbptt, "seq_len": trainer.seq_len,
              "batch_size": trainer.batch_size, "seed": args.seed}
    return trainer, config


class Saved:
    """Where the checkpoint goes and which step the file there holds (None: not written by this run)."""

    def __init__(self, path, step=None, fix=""):
        self.path, self.step, self.fix = path, step, fix

    def write(self, trainer, config):
        """Save atomically; NaN/inf values are refused (``NonFiniteError``) and the file left as it was."""
        try:
            save_checkpoint(self.path, trainer.model, trainer.optimizer, config, trainer.state_dict())
        except NonFiniteError as exc:
            raise NonFiniteError(f"after step {trainer.step}: {exc.finding}, so no checkpoint was written. "
                                 f"{self.status()} {self.fix}") from None
        self.step = trainer.step

    def status(self):
        """One sentence on what the checkpoint file holds now, for error messages."""
        if self.path is None:
            return "Nothing was saved (no --save)."
        if self.step is None:
            return f"No checkpoint was written; {self.path!r} was not touched."
        return f"The checkpoint {self.path!r} (step {self.step}) was left as it was."


def interrupted(trainer, saved, config, save=True):
    """After Ctrl-C: save a final checkpoint if there is a place, a whole step and finite values; 130."""
    where = f"at step {trainer.step}"
    if saved.path is None:
        message = f"interrupted {where}; nothing saved (no --save)"
    elif not trainer.at_step_boundary:
        message = (f"interrupted during step {trainer.step + 1}, after some of its updates; not saved, "
                   f"since the model is between two steps and would not resume exactly. "
                   f"{saved.status()}")
    elif saved.step == trainer.step:
        message = f"interrupted {where}; checkpoint {saved.path} holds step {trainer.step}"
    elif not save:
        message = f"interrupted again, {where}; not saved, as asked. {saved.status()}"
    else:
        try:
            saved.write(trainer, config)
            message = f"interrupted {where}; saved checkpoint {saved.path} (step {trainer.step})"
        except NonFiniteError:
            message = f"interrupted {where}; not saved: the model holds NaN/inf values. {saved.status()}"
    print(f"tinygraph train: {message}", file=sys.stderr)
    return 130


@contextlib.contextmanager
def stop_on_interrupt(trainer):
    """While training, the first Ctrl-C (SIGINT) asks the trainer to stop after the step in progress;
    a second one raises ``KeyboardInterrupt`` at once. Only the main thread can handle signals."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if trainer.stop_requested:
            raise KeyboardInterrupt
        trainer.request_stop()
        print("\ntinygraph train: stopping after this step (Ctrl-C again to stop at once, without saving)",
              file=sys.stderr, flush=True)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)


def resume(trainer, config, path):
    """Load model, optimiser and trainer state from ``path`` after checking it fits ``config``."""
    checkpoint = load_checkpoint(path)
    check_config(checkpoint, config, RESUME_KEYS)
    if checkpoint.trainer_state is None:
        raise CheckpointError(f"checkpoint {path!r} holds no trainer state; it cannot be resumed")
    restore(checkpoint, trainer.model, trainer.optimizer)
    trainer.optimizer.lr = config["lr"]  # the command line wins over the saved learning rate
    try:
        trainer.load_state_dict(checkpoint.trainer_state)
    except ValueError as exc:
        raise CheckpointError(f"checkpoint {path!r}: {exc}") from None

