"""Plot how far back in time the gradient reaches: ‖∂L/∂h_t‖ against t for a last-step loss.

The loss sits on the last step only, so ‖∂L/∂h_t‖ is the norm of the product of T-1-t step Jacobians:
a plain RNN's typically shrinks geometrically (vanishing gradients), an LSTM's cell path keeps it.

Example:
  tinygraph gradflow --cell rnn,lstm,gru --steps 50 -o gradflow.svg
"""
import visualize

from .cells import KINDS, cell_spec
from .limits import integer, output_file
from .render import add_model_arguments, build_model, unrolled_graph

STEPS = integer(1, 10_000)   # every step is unrolled, with its gradients


def cell_list(text):
    cells = [c.strip() for c in text.split(",") if c.strip()]
    if not cells:
        raise ValueError(f"--cell: expected a comma-separated list of {', '.join(KINDS)} or "
                         f"package.module:ClassName, got {text!r}")
    return list(dict.fromkeys(cell_spec(c) for c in cells))


def add_arguments(parser):
    parser.add_argument("--cell", type=cell_list, default=["rnn", "lstm"],
                        help="comma-separated cells to compare")
    add_model_arguments(parser, steps=STEPS)
    parser.set_defaults(steps=50, hidden=16, input_size=4)
    parser.add_argument("--title", default=None, help="the plot's title (default: says what is plotted)")
    parser.add_argument("-o", "--output", required=True, type=output_file("svg"), help="output SVG file")


def state_norms(cell, steps, hidden=16, input_size=4, layers=1, batch=1, seed=0):
    """``[‖∂L/∂h_t‖ for t in 0..T-1]`` for the last layer of a seeded ``cell`` net."""
    model = build_model(cell, input_size, hidden, layers, seed)
    graph = unrolled_graph(model, steps, batch, seed, grads=True)
    norms = visualize.state_grad_norms(graph)
    return norms[f"{model.kind}/l{layers - 1}"]


def run(args):
    runs = {cell: state_norms(cell, args.steps, args.hidden, args.input_size, args.layers, args.batch,
                              args.seed) for cell in args.cell}
    title = args.title or f"‖∂L/∂h_t‖ of a last-step loss (T={args.steps}, hidden {args.hidden})"
    visualize.gradflow(runs, args.output, title=title)
    for cell, norms in runs.items():
        print(f"{cell:5s} ‖∂L/∂h_t‖ at t=0: {norms[0]:.3g}   at t={len(norms) - 1}: {norms[-1]:.3g}")
    print(f"wrote {args.output}")
    return 0
