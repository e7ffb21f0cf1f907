"""Export a model saved by `tinygraph train --save PATH` to an ONNX file.

The model is rebuilt from the checkpoint's config, as `sample` does, and traced on example inputs of
--seq-len steps by --batch-size sequences (default: the sizes it was trained with). Time and batch
stay dynamic in the file: it runs at any sequence length and batch size. Inputs: `input` (ids (T, B)
for a character model, else features (T, B, input_size)); outputs: `output` (the logits) and the
final states `h_n` (and `c_n` for an LSTM). Check and run it with onnx and onnxruntime (pip install
'tinygraph[onnx]').

Examples:
  tinygraph export --load ckpt.npz -o model.onnx
  tinygraph export --load ckpt.npz -o model.onnx --recurrent scan --dtype float64
"""
import argparse
import os
import sys

import numpy as np

from rnn_models.checkpoint import CheckpointError, load_checkpoint
from tinygraph.export import ONNX_OPSET, SUPPORTED_OPSETS, to_onnx

from .limits import integer
from .saved_models import build_saved_model

SEQ_LEN = integer(1, 10_000, size=True)
BATCH_SIZE = integer(1, 4096, size=True)
OPSET = integer(min(SUPPORTED_OPSETS), max(SUPPORTED_OPSETS))   # every opset in between is supported


def onnx_file(text):
    """argparse type: a path ending in .onnx whose directory exists."""
    if not text.endswith(".onnx"):
        raise argparse.ArgumentTypeError(f"the file name must end in .onnx, got {text!r}")
    folder = os.path.dirname(text) or "."
    if not os.path.isdir(folder):
        raise argparse.ArgumentTypeError(f"directory {folder!r} does not exist (for {text!r})")
    return text


def add_arguments(parser):
    """The ``tinygraph export`` flags, added to ``parser``."""
    parser.add_argument("--load", metavar="PATH", required=True, help="checkpoint written by train --save")
    parser.add_argument("-o", "--output", metavar="FILE", required=True, type=onnx_file,
                        help="the ONNX file to write (.onnx)")
    parser.add_argument("--seq-len", type=SEQ_LEN, default=None,
                        help=f"time steps of the example input, {SEQ_LEN.text} (default: the checkpoint's "
                             f"seq_len, else 16); the file runs at any length")
    parser.add_argument("--batch-size", type=BATCH_SIZE, default=None,
                        help=f"sequences in the example input, {BATCH_SIZE.text} (default: the "
                             f"checkpoint's batch_size, else 1); the file runs at any batch size")
    parser.add_argument("--dtype", choices=("float32", "float64"), default=None,
                        help="cast the model before exporting (default: the dtype it was trained in)")
    parser.add_argument("--recurrent", choices=("native", "scan"), default="native",
                        help="RNN/LSTM/GRU as ONNX's own ops (native) or as a Scan of the step (scan); "
                             "a user's cell is always a Scan")
    parser.add_argument("--opset", type=OPSET, default=ONNX_OPSET, help=f"ONNX opset, {OPSET.text}")
    parser.add_argument("--trust-cell", action="store_true",
                        help="allow a checkpoint whose model uses your own cell (package.module:ClassName) "
                             "to import that module; a file could otherwise make any installed module run")


def load_model(path, trust_cell=False):
    """The model saved in checkpoint ``path`` and the checkpoint's config (a user's cell is imported
    only with ``trust_cell``, since its name comes from the file)."""
    checkpoint = load_checkpoint(path)
    model_config = checkpoint.config.get("model")
    if not isinstance(model_config, dict):
        raise CheckpointError(f"checkpoint {path!r} holds no model config; export needs a checkpoint "
                              f"written by train --save")
    return build_saved_model(path, checkpoint, trust_cell), checkpoint.config


def example_input(model, steps, batch):
    """Zeros the model reads: ids (T, B) with an embedding, else features (T, B, input_size)."""
    if model.vocab_size is not None:
        return np.zeros((steps, batch), dtype=np.int64)
    return np.zeros((steps, batch, model.input_size), dtype=model.rnn.dtype)


def _size(config, key, default):
    value = config.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else default


def run(args):
    """Run ``tinygraph export`` with the parsed ``args``; returns the exit code."""
    if args.trust_cell and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())   # a user's cell is looked up from the current directory
    model, config = load_model(args.load, trust_cell=args.trust_cell)
    if args.dtype is not None:
        model.to(np.dtype(args.dtype))
    steps = args.seq_len or min(_size(config, "seq_len", 16), SEQ_LEN.high)
    batch = args.batch_size or min(_size(config, "batch_size", 1), BATCH_SIZE.high)
    exported = to_onnx(model, args.output, (example_input(model, steps, batch),), opset=args.opset,
                       recurrent=args.recurrent)
    print(f"wrote {args.output}: {exported.summary()}")
    native = [op for op in ("RNN", "LSTM", "GRU") if op in exported.op_counts]
    if native and model.rnn.dtype == np.float64:
        print(f"note: onnxruntime has no float64 kernel for {', '.join(native)}; to run the file there, "
              f"export with --dtype float32 or --recurrent scan", file=sys.stderr)
    return 0
