"""Long unrolls drawn within a budget. A graph may record only some time steps of a longer run
(steps 0-2 and 48-49 of 50): the picture elides the numbers between them as it elides the steps a
window leaves out, so drawing the kept steps alone gives the picture of the whole unroll."""
import random
import re

import numpy as np
import pytest

import tinygraph as tg
import visualize
from tinygraph.graph import Loop
from tinygraph.modes import current_scope, in_step
from visualize.structure import fit_window, gaps


def rnn_steps(numbers, hidden=3, seed=0):
    """A tanh RNN whose consecutive steps are recorded as time steps ``numbers`` (each feeds the
    next), with a loss on the last. Returns its Graph."""
    rng = np.random.default_rng(seed)
    w = tg.tensor(rng.uniform(-0.5, 0.5, (2, hidden)), requires_grad=True, name="weight_ih_l0")
    u = tg.tensor(rng.uniform(-0.5, 0.5, (hidden, hidden)), requires_grad=True, name="weight_hh_l0")
    x = tg.tensor(rng.standard_normal((len(numbers), 1, 2)), name="x")
    h = tg.tensor(np.zeros((1, hidden)), name="h0")
    with tg.scope("rnn"), tg.scope("l0"):
        loop = Loop(current_scope())
        for k, t in enumerate(numbers):
            with tg.scope(f"t={t}"), in_step(loop, t):
                new = tg.tanh(x[k] @ w + h @ u)
                new.name = "h"
                loop.record(t, (h,), (new,), new)
            h = new
    with tg.scope("loss"):
        loss = (h ** 2).sum()
    return tg.Graph.of(loss)


def brute_gaps(kept, steps):
    drawn = set(kept)
    missing = [t for t in range(min(steps), max(steps) + 1) if t not in drawn] if steps else []
    runs = []
    for t in missing:
        if runs and runs[-1][1] == t - 1:
            runs[-1][1] = t
        else:
            runs.append([t, t])
    return [tuple(r) for r in runs]


def test_gaps_include_the_numbers_a_graph_has_no_step_for():
    assert gaps([0, 1, 2, 998, 999], [0, 1, 2, 998, 999]) == [(3, 997)]
    assert gaps([0, 2], [0, 1, 2]) == [(1, 1)]
    assert gaps([0, 9], [0, 1, 5, 9]) == [(1, 8)]
    assert gaps([0, 1], [0, 1]) == [] and gaps([], []) == []
    rng = random.Random(0)
    for _ in range(500):
        steps = sorted(rng.sample(range(40), rng.randint(1, 15)))
        kept = sorted(rng.sample(steps, rng.randint(0, len(steps))))
        assert gaps(kept, steps) == brute_gaps(kept, steps), (kept, steps)


def test_fit_window_keeps_the_longest_first_and_last_run_that_fits():
    rng = random.Random(1)
    for _ in range(500):
        kept = sorted(rng.sample(range(60), rng.randint(1, 25)))
        cost = {t: rng.randint(1, 9) for t in kept}
        budget = rng.randint(0, 100)
        best = kept[:1]
        for n in range(2, len(kept) + 1):
            window = kept[:(n + 1) // 2] + kept[len(kept) - n // 2:]
            if sum(cost[t] for t in window) > budget:
                break
            best = window
        assert fit_window(kept, cost.__getitem__, budget) == best
    assert fit_window(range(10**6), lambda t: 10, 45) == [0, 1, 999998, 999999]   # lazy over a range


def summary(source):
    return {"steps": re.findall(r"class=step .*?<B>(t=\d+)</B>", source),
            "elided": re.findall(r"(t=\d+…\d+ elided)", source),
            "edges": sorted(re.findall(r"-> \w+ \[class=(\w+)", source)),
            "nodes": len(re.findall(r"^\s*n\d+ \[", source, flags=re.M)),
            "refs": len(re.findall(r"^\s*r\d+_\d+ \[", source, flags=re.M))}


@pytest.mark.parametrize("level", visualize.LEVELS)
def test_a_graph_of_the_kept_steps_draws_as_the_whole_unroll_with_a_window(level):
    whole = visualize.to_dot(rnn_steps(range(50)), level=level, steps="0:3,-2:").source
    kept = visualize.to_dot(rnn_steps([0, 1, 2, 48, 49]), level=level).source
    assert summary(kept) == summary(whole)
    assert summary(kept)["steps"] == ["t=0", "t=1", "t=2", "t=48", "t=49"]
    assert summary(kept)["elided"] == ["t=3…47 elided"]
    # the state from step 2 reaches step 48 through the "…" node, never around it
    assert re.search(r"\w+ -> e3 \[class=elided", kept) and re.search(r"e3 -> \w+ \[class=elided", kept)
    assert "t=2" not in "".join(re.findall(r"class=state.*", kept))


def test_a_window_over_a_graph_of_kept_steps_elides_more():
    source = visualize.to_dot(rnn_steps([0, 1, 2, 48, 49]), steps="0:1,-1:").source
    assert summary(source)["steps"] == ["t=0", "t=49"] and summary(source)["elided"] == ["t=1…48 elided"]


# --- `tinygraph render`: the budget is checked before unrolling ----------------------------------------
def render_cli(argv, capsys):
    from tinygraph_app import cli
    try:
        code = cli.main(["render", *argv])
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


needs_dot = pytest.mark.skipif(not __import__("shutil").which("dot"), reason="Graphviz `dot` not installed")


@needs_dot
def test_a_million_steps_render_in_seconds(capsys, tmp_path):
    import time
    begin = time.perf_counter()
    code, out, err = render_cli(["--steps", "1000000", "-o", str(tmp_path / "m.svg")], capsys)
    seconds = time.perf_counter() - begin
    assert code == 0 and out.startswith("wrote") and seconds < 30     # about 1.5 s on 2 busy cores
    # 355 steps fit --max-nodes, but time runs in one row: 70 keep it within 20,000 pt
    assert err.count("\n") == 1 and err.startswith("tinygraph render: note: drawing 70 of 1000000 time "
                                                   "steps (t=0…34, 999965…999999)")
    assert "within 20000 pt wide" in err and "only the drawn steps were unrolled" in err
    text = (tmp_path / "m.svg").read_text()
    assert text.count('class="cluster step"') == 70 and "t=35…999964 elided" in text
    assert ">t=999999<" in text and "x[0:35, 999965:1000000]" in text


@pytest.mark.parametrize("flag", ["--grads", "--values"])
def test_painting_a_million_steps_is_refused_before_unrolling(flag, capsys, tmp_path):
    code, out, err = render_cli(["--steps", "1000000", flag, "-o", str(tmp_path / "m.svg")], capsys)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert f"{flag} needs the whole unroll, and --steps 1000000 would be ~4000016 nodes" in err
    assert "lower --steps to about 12499" in err and f"drop {flag}" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("cell,level,layers", [("rnn", "op", 1), ("lstm", "cell", 2), ("gru", "layer", 1),
                                               ("lstm", "op", 2)])
def test_unrolling_only_the_drawn_steps_draws_the_same_picture(cell, level, layers, capsys, tmp_path):
    """--timeout 0.05 allows 1000 nodes: 600 steps are then unrolled only where drawn. The picture
    equals the one of the whole unroll (drawn with the default timeout) but for the input's name and
    the dotted edge from the "…" into the stacked outputs (which read the elided steps too)."""
    common = ["--cell", cell, "--level", level, "--layers", str(layers), "--steps", "600"]
    whole, part = tmp_path / "whole.dot", tmp_path / "part.dot"
    code, _, err_whole = render_cli([*common, "-o", str(whole)], capsys)
    assert code == 0 and "only the drawn steps" not in err_whole
    code, _, err_part = render_cli([*common, "--timeout", "0.05", "-o", str(part)], capsys)
    assert code == 0 and "only the drawn steps were unrolled" in err_part
    assert err_part.split(";")[0] == err_whole.split(";")[0].rstrip("\n")   # the same steps drawn
    a, b = whole.read_text(), part.read_text()
    assert {**summary(a), "edges": None} == {**summary(b), "edges": None} and summary(a)["elided"]
    edges_a, edges_b = summary(a)["edges"], summary(b)["edges"]
    assert [e for e in edges_a if e != "elided"] == [e for e in edges_b if e != "elided"]
    assert 0 <= edges_a.count("elided") - edges_b.count("elided") <= layers    # one stack a layer
    assert "over max_nodes" not in a + b          # the estimate was right: the renderer elided no more


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru", "examples.cells:PeepholeLSTM"])
@pytest.mark.parametrize("level", visualize.LEVELS)
def test_the_estimate_before_unrolling_is_what_the_renderer_counts(cell, level):
    """For T = 120 steps, the plan made from a 2- and a 3-step unroll draws the steps the renderer
    would choose itself from the whole graph."""
    import argparse

    from tinygraph_app.render import Plan, build_model, unrolled_graph
    for layers in (1, 2):
        args = argparse.Namespace(steps=120, level=level, batch=1, seed=0, window=None, max_nodes=300,
                                  timeout=120.0, values=False)
        model = build_model(cell, 2, 3, layers, 0, fused=level != "op")
        plan = Plan(model, args)
        graph = unrolled_graph(model, 120, 1, 0)
        assert plan.nodes == len(graph.nodes)
        alone = visualize.to_dot(graph, level=level, max_nodes=300).source
        assert len(plan.drawn) < 120
        assert summary(alone)["steps"] == [f"t={t}" for t in plan.drawn], (layers, plan.drawn)


def test_no_notice_when_every_step_is_drawn_and_one_for_a_window(capsys, tmp_path):
    code, _, err = render_cli(["--steps", "30", "-o", str(tmp_path / "a.dot")], capsys)
    assert code == 0 and err == ""
    code, _, err = render_cli(["--steps", "30", "--window", "0:2,-1:", "-o", str(tmp_path / "b.dot")], capsys)
    assert code == 0 and err == ("tinygraph render: note: drawing 3 of 30 time steps (t=0…1, 29), the rest "
                                 "elided as --window 0:2,-1: asks\n")
    code, _, err = render_cli(["--steps", "100000", "--window", "3", "-o", str(tmp_path / "c.dot")], capsys)
    assert code == 0 and "drawing 3 of 100000 time steps (t=0…1, 99999)" in err
    assert "only the drawn steps were unrolled" in err and err.count("\n") == 1


def test_the_folded_view_of_a_million_steps_links_without_unrolling_them(capsys, tmp_path):
    code, _, err = render_cli(["--view", "folded", "--steps", "1000000", "--link", "u.svg",
                               "-o", str(tmp_path / "f.dot")], capsys)
    assert code == 0 and err == ""
    assert 'URL="u.svg#rnn/l0/h_0@0"' in (tmp_path / "f.dot").read_text()


@needs_dot
def test_a_timeout_too_short_for_dot_is_one_line(capsys, tmp_path):
    code, _, err = render_cli(["--steps", "20", "--timeout", "1e-6", "-o", str(tmp_path / "t.svg")], capsys)
    assert code == 2 and err.count("\n") == 1
    assert "did not finish laying out this graph" in err and "within 1e-06 s" in err


def test_memory_bounds_the_steps_unrolled(capsys, tmp_path, monkeypatch):
    """With 64 KiB allowed (UNROLL_BYTES made small here), a hidden size of 64 leaves room for a few
    steps only: fewer are drawn, and said so; painting them is refused, naming the memory."""
    import tinygraph_app.render as render
    monkeypatch.setattr(render, "UNROLL_BYTES", 2**16)
    code, _, err = render_cli(["--steps", "1000", "--hidden", "64", "-o", str(tmp_path / "m.dot")], capsys)
    assert code == 0 and err.count("\n") == 1
    drawn = int(re.search(r"drawing (\d+) of 1000 time steps", err).group(1))
    assert 1 <= drawn < 20 and "to stay within 64 KiB of memory" in err
    assert summary((tmp_path / "m.dot").read_text())["steps"][-1] == "t=999"
    code, _, err = render_cli(["--steps", "1000", "--hidden", "64", "--values", "-o", str(tmp_path / "v.dot")],
                              capsys)
    assert code == 2 and "--values needs the whole unroll" in err and "MiB, over the 64 KiB allowed" in err


def test_the_same_options_give_byte_identical_pictures(capsys, tmp_path):
    """The plan depends on the options only (no clock): the same run twice, the same DOT."""
    for argv in (["--steps", "20000"], ["--steps", "1000", "--cell", "lstm", "--level", "cell"]):
        first, second = tmp_path / "a.dot", tmp_path / "b.dot"
        assert render_cli([*argv, "-o", str(first)], capsys)[0] == 0
        assert render_cli([*argv, "-o", str(second)], capsys)[0] == 0
        assert first.read_bytes() == second.read_bytes()
