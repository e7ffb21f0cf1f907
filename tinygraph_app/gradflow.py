"""Plot how far back in time the gradient reaches: ‖∂L/∂h_t‖, and the LSTM's ‖∂L/∂c_t‖, against t
for a loss on the last step.

The loss sits on the last step only, so ∂L/∂h_t is ∂L/∂h_{T-1} carried back through T-1-t step
Jacobians. What the printed numbers show (hidden 16, input 4, batch 1; each ordering is checked at
T=40 and T=100 for two seeds by tests/test_gradflow_claims.py):
  - At PyTorch's initialisation (--forget-bias 0) it vanishes in every cell: ‖∂L/∂h_0‖ is below a
    millionth of ‖∂L/∂h_{T-1}‖ for rnn, lstm and gru alike (which of them keeps the most changes with
    the seed), and the LSTM's ‖∂L/∂c_0‖ is below a millionth of ‖∂L/∂c_{T-1}‖ too.
  - A larger forget-gate bias keeps more of it: ‖∂L/∂c_0‖ grows with --forget-bias; at 1 the LSTM's
    ‖∂L/∂h_0‖ is over 100 times the RNN's and the GRU's, and at 3 its ‖∂L/∂c_0‖ is within a factor
    of 10 of ‖∂L/∂c_{T-1}‖: the cell path carries the gradient back.

Example:
  tinygraph gradflow --cell rnn,lstm,gru --steps 40 --forget-bias 0,3 -o gradflow.svg
"""
import argparse

import visualize

from .cells import KINDS, cell_spec
from .extras import require
from .limits import Range, integer, output_file
from .render import add_model_arguments, build_model, unrolled_graph

STEPS = integer(1, 10_000)   # every step is unrolled, with its gradients
FORGET_BIAS = Range(float, -20.0, 20.0)   # σ(±20) is 1 or 0 to 9 digits: past it nothing changes


def cell_list(text):
    """``--cell``: comma-separated cells (registry kinds or ``package.module:ClassName``), each once,
    in order; an empty list raises ValueError."""
    cells = [c.strip() for c in text.split(",") if c.strip()]
    if not cells:
        raise ValueError(f"--cell: expected a comma-separated list of {', '.join(KINDS)} or "
                         f"package.module:ClassName, got {text!r}")
    return list(dict.fromkeys(cell_spec(c) for c in cells))


def bias_list(text):
    """``--forget-bias``: comma-separated numbers, each in [-20, 20]."""
    parts = [p.strip() for p in text.split(",")]
    try:
        if not all(parts):
            raise argparse.ArgumentTypeError("an empty value")
        return list(dict.fromkeys(FORGET_BIAS(p) for p in parts))
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"must be comma-separated numbers in {FORGET_BIAS.text} like "
                                         f"0,1,3, got {text[:40]!r} ({exc})") from None


def add_arguments(parser):
    """Add the ``tinygraph gradflow`` flags to the argparse ``parser``."""
    parser.add_argument("--cell", type=cell_list, default=["rnn", "lstm"],
                        help="comma-separated cells to compare")
    add_model_arguments(parser, steps=STEPS)
    parser.set_defaults(steps=50, hidden=16, input_size=4)
    parser.add_argument("--forget-bias", type=bias_list, default=[0.0], metavar="B[,B...]",
                        help=f"added to the LSTM's forget-gate bias (b_ih's f rows), each value in "
                             f"{FORGET_BIAS.text} drawn as an LSTM run of its own; 0 is PyTorch's "
                             f"initialisation")
    parser.add_argument("--title", default=None, help="the plot's title (default: says what is plotted)")
    parser.add_argument("-o", "--output", required=True, type=output_file("svg"), help="output SVG file")


def state_gradients(cell, steps, hidden=16, input_size=4, layers=1, batch=1, seed=0, forget_bias=0.0):
    """``{"h": [‖∂L/∂h_t‖ for t in 0..T-1]}`` for the last layer of a seeded ``cell`` net, with
    ``"c"`` beside it for the LSTM; ``forget_bias`` is added to every LSTM layer's forget-gate bias
    (``bias_ih_l<k>`` rows H..2H, PyTorch's gate order i, f, g, o). The LSTM is built from primitives
    (same numbers) so that its last c_t is a node of the graph too."""
    if forget_bias and cell != "lstm":
        raise ValueError(f"--forget-bias {forget_bias:g}: only the LSTM has a forget gate, not {cell!r}")
    model = build_model(cell, input_size, hidden, layers, seed, fused=cell != "lstm")
    if forget_bias:
        params = dict(model.named_parameters())
        for k in range(layers):
            params[f"bias_ih_l{k}"].data[hidden:2 * hidden] += forget_bias
    graph = unrolled_graph(model, steps, batch, seed, grads=True)
    last = f"{model.kind}/l{layers - 1}"
    out = {"h": visualize.state_grad_norms(graph)[last]}
    if cell == "lstm":
        out["c"] = visualize.state_grad_norms(graph, "c")[last]
    return out


def state_norms(cell, steps, hidden=16, input_size=4, layers=1, batch=1, seed=0, forget_bias=0.0):
    """``[‖∂L/∂h_t‖ for t in 0..T-1]`` for the last layer of a seeded ``cell`` net."""
    return state_gradients(cell, steps, hidden, input_size, layers, batch, seed, forget_bias)["h"]


def runs_of(args):
    """``{label: norms}``: each cell's h, and for the LSTM its h and c at each --forget-bias."""
    if "lstm" not in args.cell and any(args.forget_bias):
        raise ValueError(f"--forget-bias {','.join(f'{b:g}' for b in args.forget_bias)}: only the LSTM "
                         f"has a forget gate; add lstm to --cell (got {','.join(args.cell)})")
    runs = {}
    for cell in args.cell:
        for bias in (args.forget_bias if cell == "lstm" else [0.0]):
            norms = state_gradients(cell, args.steps, args.hidden, args.input_size, args.layers,
                                    args.batch, args.seed, bias)
            tag = f" (forget bias {bias:+g})" if cell == "lstm" and args.forget_bias != [0.0] else ""
            for name, values in norms.items():
                runs[f"{cell} {name}{tag}"] = values
    return runs


def run(args):
    """Run ``tinygraph gradflow`` with the parsed ``args``; returns the exit code."""
    require("matplotlib", "plot", "the plot")   # before the work, not after it
    runs = runs_of(args)
    title = args.title or (f"gradient of a last-step loss back through time (T={args.steps}, "
                           f"hidden {args.hidden})")
    visualize.gradflow(runs, args.output, title=title, ylabel="‖∂L/∂h_t‖ (LSTM: also ‖∂L/∂c_t‖)")
    width = max(map(len, runs))
    for label, norms in runs.items():
        state = label.split()[1]
        first, last = norms[0], norms[-1]
        ratio = f"{first / last:.3g}" if last else "—"
        print(f"{label:{width}s}  ‖∂L/∂{state}_t‖ at t=0: {first:.3g}   at t={len(norms) - 1}: {last:.3g}"
              f"   t=0 / t={len(norms) - 1}: {ratio}")
    print(f"wrote {args.output}")
    return 0
