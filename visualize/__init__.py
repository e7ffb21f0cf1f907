"""Graphviz pictures of tinygraph Graphs: folded and unrolled recurrent nets, with gradients painted on.

``visualize`` sees only ``tinygraph.Graph`` — nodes, edges, scope paths (``"lstm/l0/t=3/forget_gate"``),
``loop_edges`` and the time steps the unroll recorded (``Graph.steps``, ``Graph.state_edges``) — never
the model code that built it::

    import visualize
    graph = visualize.retain_all(loss)           # every op keeps its gradient
    loss.backward()
    visualize.render(graph, "unrolled.svg", level="cell", steps="0:3,-2:", grads=True)
    visualize.render(cell_graph, "folded.svg", view="folded")   # Recurrent(cell).folded()
    visualize.gradflow({"rnn": norms_rnn, "lstm": norms_lstm}, "gradflow.svg")
    visualize.explore(graph, "explorer.html")   # one self-contained page: hover, paths, BPTT slider

``to_dot`` builds the ``graphviz.Digraph`` (its docstring and ``visualize.dot``'s are the colour
legend); ``render``/``svg`` lay it out with Graphviz's ``dot`` (needed only for pictures, not for DOT
text). Importing this package gives ``tg.Graph`` a ``_repr_mimebundle_``, so graphs display in Jupyter.
"""
from .dot import (DEFAULT_MAX_NODES, DEFAULT_MAX_WIDTH, LEVELS, VIEWS, link_to, step_costs,  # noqa: F401
                  step_widths, to_dot)
from .explore import Explorer, explore  # noqa: F401
from .grads import GradScale, edge_grads, node_norms, retain_all  # noqa: F401
from .plots import gradflow, loss_curve, state_grad_norms  # noqa: F401
from .render import (FORMATS, SUFFIXES, GraphvizNotFoundError, RenderError, check_timeout,  # noqa: F401
                     dot_executable, format_of, install_display_hook, layout, render, svg)
from .structure import StepIndex, fit_window, gaps, parse_steps  # noqa: F401

__all__ = ["to_dot", "render", "svg", "layout", "explore", "Explorer", "retain_all", "gradflow", "loss_curve",
           "state_grad_norms", "GradScale", "edge_grads", "node_norms", "link_to", "step_costs",
           "step_widths", "DEFAULT_MAX_NODES", "DEFAULT_MAX_WIDTH", "LEVELS", "VIEWS", "FORMATS",
           "SUFFIXES", "GraphvizNotFoundError", "RenderError", "check_timeout", "dot_executable",
           "format_of", "install_display_hook", "StepIndex", "fit_window", "gaps", "parse_steps"]

install_display_hook()
