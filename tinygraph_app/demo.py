"""The main demo: a character-level recurrent net learns the embedded text in about a minute.

Trains a CharRNN (one-hot characters -> 2-layer GRU -> linear -> softmax) on rnn_models/data with Adam,
truncated BPTT and gradient clipping, printing the loss as it falls and an evaluation on held-out text,
then samples from the model, and writes pictures of small nets into out/ (SVGs with Graphviz's `dot`,
else .dot files; the plots need matplotlib, else they are skipped with a note).

Examples:
  tinygraph demo
  tinygraph demo --seconds 20 --cell lstm --hidden 64
"""
import time

import tinygraph as tg
from rnn_models.models import CharRNN
from rnn_models.tasks import make_task
from rnn_models.training import Trainer, make_optimizer, set_default_compile

from .render import write_demo_pictures
from .cells import KINDS
from .limits import SEED, THREADS, number
from .progress import Progress
from .train import HIDDEN, configure_runtime

SECONDS = number(0, 3600)

# Chosen so the loss falls visibly within a minute on 2 cores. The text is small (57 KB): a 1-layer net
# starts to overfit after ~25 s; two layers with dropout between them keep the held-out loss falling.
DEMO = dict(cell="gru", hidden=128, layers=2, dropout=0.3, batch_size=32, seq_len=64, tbptt=32, lr=3e-3,
            clip=5.0)


def add_arguments(parser):
    """Add the ``tinygraph demo`` flags to the argparse ``parser``."""
    parser.add_argument("--seconds", type=SECONDS, default=60.0, help=f"training time budget, {SECONDS.text}")
    parser.add_argument("--cell", choices=KINDS, default=DEMO["cell"], help="recurrent cell")
    parser.add_argument("--hidden", type=HIDDEN, default=DEMO["hidden"], help=f"hidden size, {HIDDEN.text}")
    parser.add_argument("--seed", type=SEED, default=0, help=f"random seed, {SEED.text}")
    parser.add_argument("--threads", type=THREADS, default=1, help=f"BLAS threads, {THREADS.text}")
    parser.add_argument("--no-compile", action="store_true",
                        help="run every training step eagerly instead of replaying it as a traced plan "
                             "(tg.compile; same numbers, bit for bit), to compare")


def train_char_rnn(seconds=60.0, cell=DEMO["cell"], hidden=DEMO["hidden"], seed=0, log=None):
    """Train a CharRNN on the embedded text for ``seconds``; returns ``(model, trainer)``
    (``trainer.history`` holds the per-step loss and gradient norm for plots)."""
    task = make_task("chars")
    tg.manual_seed(seed)
    model = CharRNN(task.vocab, hidden, cell=cell, num_layers=DEMO["layers"], dropout=DEMO["dropout"])
    optimizer = make_optimizer("adam", model.parameters(), DEMO["lr"])
    trainer = Trainer(model, task, optimizer, batch_size=DEMO["batch_size"], seq_len=DEMO["seq_len"],
                      tbptt=DEMO["tbptt"], clip=DEMO["clip"], seed=seed, log=log, eval_every=50)
    trainer.train(time_limit=seconds)
    return model, trainer


def run(args):
    """Run ``tinygraph demo`` with the parsed ``args``; returns the exit code."""
    configure_runtime(args.threads)
    print(f"char-RNN demo: {DEMO['layers']}-layer {args.cell.upper()}, hidden {args.hidden}, dropout "
          f"{DEMO['dropout']}, batch {DEMO['batch_size']} x "
          f"{DEMO['seq_len']} characters, truncated BPTT every {DEMO['tbptt']} steps, Adam lr {DEMO['lr']}, "
          f"about {args.seconds:.0f} s")
    begin = time.perf_counter()
    set_default_compile(not args.no_compile)
    with Progress(every=25) as progress:
        model, trainer = train_char_rnn(args.seconds, args.cell, args.hidden, args.seed, log=progress)
    history = trainer.history
    print(f"trained {trainer.step} steps in {time.perf_counter() - begin:.1f} s: loss {history['loss'][0]:.3f} "
          f"-> {history['smoothed_loss'][-1]:.3f} (smoothed), held-out "
          f"{history['eval'][-1]['loss']:.3f} nats/char, accuracy {history['eval'][-1]['accuracy']:.1%}")
    prompt = "The keeper "
    print(f"sample (temperature 0.7):\n{prompt}{model.sample(prompt, 400, temperature=0.7, seed=args.seed)}")
    write_demo_pictures("out", history)
    return 0
