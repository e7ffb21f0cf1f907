"""visualize.gradflow / loss_curve: SVG line plots, byte-stable, with clear errors on bad input."""
import re
import xml.etree.ElementTree as ET

import pytest

import visualize

pytest.importorskip("matplotlib", reason="the plots need the optional matplotlib extra")


def lines(svg):
    """The path data of each plotted run (plots tag run k's line with id="run-k")."""
    root = ET.fromstring(svg)
    return [g.find("{http://www.w3.org/2000/svg}path").get("d")
            for g in root.iter("{http://www.w3.org/2000/svg}g") if (g.get("id") or "").startswith("run-")]


def test_gradflow_draws_one_line_per_run_on_a_log_scale(tmp_path):
    runs = {"rnn": [10.0 ** -k for k in range(8, -1, -1)], "lstm": [0.5] * 9}
    svg = visualize.gradflow(runs, tmp_path / "g.svg")
    assert (tmp_path / "g.svg").read_text() == svg
    rnn, lstm = lines(svg)
    assert rnn.count("L") == 8 and lstm.count("L") == 8            # 9 points each
    # a log axis: the rnn line spans 8 decades, so decade ticks 1e-8 ... 1e0 exist
    assert len(re.findall(r'id="ytick_\d+"', svg)) >= 5


def test_plots_are_byte_identical_run_to_run():
    runs = {"a": [1.0, 0.1, 0.01], "b": [1.0, 0.5, 0.25]}
    assert visualize.gradflow(runs) == visualize.gradflow(runs)
    assert visualize.loss_curve([3.0, 2.0, 1.5]) == visualize.loss_curve([3.0, 2.0, 1.5])
    assert "Date" not in visualize.loss_curve([1.0, 0.5])


def test_gradflow_leaves_out_zeros_and_rejects_runs_with_nothing_to_draw():
    assert len(lines(visualize.gradflow({"r": [0.0, 1e-3, 1e-2, float("nan"), 1.0]}))) == 1
    with pytest.raises(ValueError, match="no positive finite value"):
        visualize.gradflow({"dead": [0.0, 0.0]})
    with pytest.raises(ValueError, match="no runs"):
        visualize.gradflow({})
    with pytest.raises(ValueError, match="has no values"):
        visualize.loss_curve({"empty": []})


def test_loss_curve_takes_several_histories():
    svg = visualize.loss_curve({"sgd": [3, 2.5, 2.2, 2.0], "adam": [3, 2, 1.5, 1.2]}, log_y=True)
    assert len(lines(svg)) == 2
