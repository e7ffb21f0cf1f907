"""Helpers several test files share (imported as ``from helpers import ...``; pytest puts tests/ on
the path)."""
from tinygraph_app.cli import main


def run_cli(argv, capsys):
    """``main(argv)`` -> (exit code, stdout, stderr); argparse's SystemExit counts as a return, and
    no output may hold a traceback."""
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def run_folded(graph, xs, state0):
    """Evaluate a folded graph over the inputs ``xs`` by replaying its ops, feeding each loop edge's
    source back into its destination placeholder: the graph alone, not the cell, computes the
    sequence. Returns the final value of each state placeholder."""
    (x_pos,) = [i for i, n in enumerate(graph.nodes) if n.name == "x[t]"]
    state_pos = [dst for _, dst in graph.loop_edges]
    values = dict(zip(state_pos, state0))
    for x in xs:
        values[x_pos] = x
        for i, n in enumerate(graph.nodes):
            if n.op is not None:
                values[i] = n.op.forward(*(values[graph.index(t)] for t in n.inputs))
            elif i not in values:
                values[i] = n.data
        values = {**{dst: values[src] for src, dst in graph.loop_edges}, x_pos: None}
    return [values[dst] for dst in state_pos]
