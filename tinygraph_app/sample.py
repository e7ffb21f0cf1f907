"""Generate text from a character-level model saved by `tinygraph train --task chars --save PATH`.

Examples:
  tinygraph sample --load ckpt.npz --prompt "The " -n 200
  tinygraph sample --load ckpt.npz --temperature 0.5 --seed 3
"""
import numpy as np

from rnn_models.checkpoint import CheckpointError, load_checkpoint
from rnn_models.models import CharRNN

from .limits import SEED, integer, number
from .saved_models import build_saved_model

LENGTH = integer(1, 100_000)
# softmax(logits / T) stays finite for T in this range (a smaller T is argmax in all but name)
TEMPERATURE = number(1e-3, 1e3)


def add_arguments(parser):
    """Add the ``tinygraph sample`` flags to the argparse ``parser``."""
    parser.add_argument("--load", metavar="PATH", required=True, help="checkpoint written by train --save")
    parser.add_argument("--prompt", default=None,
                        help="text to start from (default: a newline, or the first vocabulary character)")
    parser.add_argument("-n", type=LENGTH, default=200, help=f"characters to generate, {LENGTH.text}")
    parser.add_argument("--temperature", type=TEMPERATURE, default=1.0,
                        help=f"sampling temperature, {TEMPERATURE.text}; lower is more conservative")
    parser.add_argument("--seed", type=SEED, default=0, help=f"random seed, {SEED.text}")
    parser.add_argument("--trust-cell", action="store_true",
                        help="allow a checkpoint whose model uses your own cell (package.module:ClassName) "
                             "to import that module; a file could otherwise make any installed module run")


def load_char_model(path, trust_cell=False):
    """The ``CharRNN`` saved in checkpoint ``path`` (its architecture comes from the saved config).

    A config naming a user's cell as ``package.module:ClassName`` imports that module; only with
    ``trust_cell``, since the name comes from the file."""
    checkpoint = load_checkpoint(path)
    model_config = checkpoint.config.get("model")
    if not isinstance(model_config, dict) or model_config.get("kind") != CharRNN.kind:
        kind = model_config.get("kind") if isinstance(model_config, dict) else None
        raise CheckpointError(f"checkpoint {path!r} holds a {kind or 'unknown'} model, not a CharRNN; "
                              f"sampling needs a model trained with --task chars")
    model = build_saved_model(path, checkpoint, trust_cell)
    bad = [name for name, p in model.named_parameters() if not np.isfinite(p.data).all()]
    if bad:   # sampling would meet NaN probabilities
        raise CheckpointError(f"checkpoint {path!r} holds non-finite values (NaN or inf) in {len(bad)} "
                              f"parameter(s), {', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''}; "
                              f"it was saved after training diverged: train again, e.g. with a lower "
                              f"--lr or --clip")
    return model


def run(args):
    """Run ``tinygraph sample`` with the parsed ``args``; returns the exit code."""
    model = load_char_model(args.load, trust_cell=args.trust_cell)
    prompt = args.prompt if args.prompt is not None else ("\n" if "\n" in model.vocab else model.vocab[0])
    text = model.sample(prompt, args.n, temperature=args.temperature, seed=args.seed)
    print(prompt + text)
    return 0
