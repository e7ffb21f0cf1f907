"""Train a recurrent model on a task with embedded data (nothing is downloaded).

Tasks: chars (character-level language model on the shipped text), adding (the adding problem),
copy (the copy/memory task), sine (next-value prediction). With --save the model, optimiser and trainer
state go to an .npz checkpoint (written atomically, no pickle); --resume continues from it, so training
k steps, saving and resuming for N-k steps gives the same parameters as training N steps.
"""
import ctypes

import tinygraph as tg
from rnn_models.checkpoint import CheckpointError, check_config, load_checkpoint, restore, save_checkpoint
from rnn_models.models import CharRNN, build_model
from rnn_models.tasks import TASKS, make_task
from rnn_models.training import OPTIMIZERS, ConsoleProgress, Trainer, make_optimizer

from .cells import HELP as CELL_HELP
from .cells import cell_spec
from .limits import SEED, THREADS, integer, number

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
    parser.add_argument("--save", metavar="PATH", help="write a checkpoint (.npz) here at the end")
    parser.add_argument("--save-every", type=positive_int, default=None,
                        help=f"also save every N steps, {positive_int.text}")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint at --save")
    parser.add_argument("--threads", type=THREADS, default=1, help=f"BLAS threads, {THREADS.text}")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")


def run(args):
    if args.resume and not args.save:
        raise ValueError("--resume needs --save PATH (the checkpoint to continue from and to update)")
    configure_runtime(args.threads)
    task = make_task(args.task)
    tg.manual_seed(args.seed)
    model = build_model(task.model_config(args.cell, args.hidden, args.layers))
    optimizer = make_optimizer(args.optim, model.parameters(), args.lr)
    log = None if args.quiet else ConsoleProgress(every=args.log_every or max(1, args.steps // 20))
    trainer = Trainer(model, task, optimizer, batch_size=args.batch_size, seq_len=args.seq_len,
                      tbptt=args.tbptt, clip=args.clip, seed=args.seed, log=log,
                      eval_every=args.eval_every or max(1, args.steps // 5))
    config = {"task": task.config(), "model": model.config(), "optimizer": args.optim, "lr": args.lr,
              "clip": args.clip, "tbptt": args.tbptt, "seq_len": trainer.seq_len,
              "batch_size": trainer.batch_size, "seed": args.seed}
    if args.resume:
        resume(trainer, config, args.save)
    print(f"training {type(model).__name__} ({args.cell}, hidden {args.hidden}, layers {args.layers}, "
          f"{model.num_parameters()} parameters) on task {task.name!r} from step {trainer.step}")
    save_every = args.save_every or args.steps
    remaining = args.steps
    while remaining:
        chunk = min(save_every, remaining)
        trainer.train(chunk)
        remaining -= chunk
        if args.save:
            save_checkpoint(args.save, model, optimizer, config, trainer.state_dict())
    if args.save:
        print(f"saved checkpoint {args.save} (step {trainer.step})")
    if isinstance(model, CharRNN):
        print("sample:", repr(model.sample(model.vocab[0] if "\n" not in model.vocab else "\n", 200,
                                           temperature=0.8, seed=args.seed)))
    return 0


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

