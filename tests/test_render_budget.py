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
