"""The experiments' scaled-down (--quick) runs reproduce the textbook results, deterministically.

Each quick run is done once per module (fixtures) and its numbers are asserted on: the measurement
helpers are also checked against closed forms and PyTorch.
"""
import json
import math
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygraph as tg
from tinygraph_app import cli
from tinygraph_app.experiments import EXPERIMENTS, adding, common, gradients, run_experiment


def quick(name, tmp_path_factory):
    out = tmp_path_factory.mktemp(name)
    report, _ = run_experiment(name, str(out), quick=True, seed=0, log=lambda line: None)
    return report, out


@pytest.fixture(scope="module")
def gradients_run(tmp_path_factory):
    return quick("gradients", tmp_path_factory)


@pytest.fixture(scope="module")
def clipping_run(tmp_path_factory):
    return quick("clipping", tmp_path_factory)


@pytest.fixture(scope="module")
def adding_run(tmp_path_factory):
    return quick("adding", tmp_path_factory)


@pytest.fixture(scope="module")
def chars_run(tmp_path_factory):
    return quick("chars", tmp_path_factory)


def svg_root(path):
    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg")
    return root


def check_files(report, out):
    """The table is written as Markdown with one cell per column, and as strict JSON; every picture
    named in the report is an SVG."""
    data = json.loads((out / f"{report.name}.json").read_text())
    assert data["rows"] == report.rows and data["numbers"]["config"]["seed"] == 0
    lines = (out / f"{report.name}.md").read_text().splitlines()
    table = [line for line in lines if line.startswith("|")]
    assert len(table) == len(report.rows) + 2
    assert {len(re.findall(r"(?<!\\)\|", line)) for line in table} == {len(report.columns) + 1}
    for name in report.files:
        svg_root(out / name)


# --- 1. vanishing / exploding gradients ------------------------------------------------------------------
def test_gradients_linear_rnn_decays_and_grows_at_rate_rho(gradients_run):
    report, out = gradients_run
    check_files(report, out)
    radii = report.numbers["radii"]
    assert set(radii) == {f"{rho:g}" for rho in gradients.RADII}
    assert radii["0.5"]["linear_rate"] < 1 < radii["3"]["linear_rate"]
    for rho in gradients.RADII:
        assert radii[f"{rho:g}"]["linear_rate"] == pytest.approx(rho, rel=1e-9)


def test_gradients_tanh_rate_stays_under_its_bound(gradients_run):
    numbers = gradients_run[0].numbers
    for rho in gradients.RADII:
        r = numbers["radii"][f"{rho:g}"]
        assert r["tanh_rate"] < r["tanh_bound"] <= rho + 1e-12
        # ‖Wᵀ diag(tanh') g‖ ≤ ρ‖g‖ for W = ρ·Q: at every distance the tanh curve lies under ρ^k
        tanh, linear = (np.array(numbers["curves"][f"{kind} ρ={rho:g}"]) for kind in ("tanh", "linear"))
        assert np.all(tanh <= linear * (1 + 1e-9))


def test_gradients_lstm_reaches_orders_of_magnitude_further_than_rnn(gradients_run):
    numbers = gradients_run[0].numbers
    assert numbers["lstm"]["norm_at_distance"] > 1e3 * numbers["rnn_default"]["norm_at_distance"]
    assert numbers["lstm"]["rate"] > numbers["rnn_default"]["rate"]
    curves = numbers["curves"]
    assert len(curves["LSTM, forget bias 1"]) == gradients.QUICK["steps"]


def test_state_gradient_norms_match_closed_form_for_linear_rnn():
    rng = np.random.default_rng(3)
    W, U = common.scaled_orthogonal(rng, 5, 0.8), rng.standard_normal((5, 2))
    W = W + 0.3 * rng.standard_normal((5, 5))        # not orthogonal: the norms are not just ρ^k
    xs, v = tg.tensor(rng.standard_normal((7, 3, 2))), rng.standard_normal((3, 5))
    states = gradients.linear_states(tg.tensor(W, requires_grad=True), tg.tensor(U), xs)
    norms = gradients.state_gradient_norms(states, v)
    expected = [np.linalg.norm(v @ np.linalg.matrix_power(W, k)) for k in range(7)]
    np.testing.assert_allclose(norms, expected, rtol=1e-12)


def test_state_gradient_norms_match_torch_for_tanh_rnn():
    torch = pytest.importorskip("torch", reason="PyTorch cross-check of the BPTT gradient norms")
    from rnn_models import Recurrent, RNNCell
    rng = np.random.default_rng(4)
    W, U = common.scaled_orthogonal(rng, 6, 1.5), rng.standard_normal((6, 3))
    xs, v = rng.standard_normal((9, 2, 3)), rng.standard_normal((2, 6))
    outputs, _ = Recurrent(RNNCell.from_parameters(tg.tensor(U), tg.tensor(W, requires_grad=True))).unroll(
        tg.tensor(xs))
    norms = gradients.state_gradient_norms(outputs, v)
    Wt, h, hs = torch.tensor(W, requires_grad=True), torch.zeros(2, 6, dtype=torch.float64), []
    for x in torch.tensor(xs):
        h = torch.tanh(x @ torch.tensor(U).T + h @ Wt.T)
        h.retain_grad()
        hs.append(h)
    (hs[-1] * torch.tensor(v)).sum().backward()
    np.testing.assert_allclose(norms, [float(h.grad.norm()) for h in reversed(hs)], rtol=1e-10)


@given(st.floats(0.2, 5.0), st.floats(1e-3, 1e3), st.integers(3, 80))
def test_fit_rate_recovers_a_geometric_rate(rate, scale, length):
    assert common.fit_rate(scale * rate ** np.arange(length)) == pytest.approx(rate, rel=1e-8)


def test_fit_rate_ignores_zeros_and_overflow():
    norms = 2.0 ** np.arange(10)
    norms[3], norms[7] = 0.0, np.inf
    assert common.fit_rate(norms) == pytest.approx(2.0)
    assert math.isnan(common.fit_rate([0.0, 1.0]))


def test_scaled_orthogonal_has_radius_and_norm_rho():
    matrix = common.scaled_orthogonal(np.random.default_rng(0), 8, 1.7)
    np.testing.assert_allclose(np.abs(np.linalg.eigvals(matrix)), 1.7)
    np.testing.assert_allclose(np.linalg.svd(matrix, compute_uv=False), 1.7)


# --- 2. exploding gradients and clipping -------------------------------------------------------------------
def test_clipping_keeps_training_finite_where_unclipped_diverges(clipping_run):
    report, out = clipping_run
    check_files(report, out)
    unclipped, clipped = report.numbers["unclipped"], report.numbers["clipped"]
    assert unclipped["initial_loss"] == clipped["initial_loss"]      # same weights, same batches
    assert not unclipped["finite"] or unclipped["final_loss"] > 1e6 * unclipped["initial_loss"]
    assert clipped["finite"] and all(math.isfinite(v) for v in clipped["grad_norms"])
    assert clipped["final_loss"] < clipped["initial_loss"]
    # the gradients did explode in the clipped run too: clipping was doing the work
    assert max(clipped["grad_norms"]) > 10 * report.numbers["config"]["clip"]


# --- 3. long-term dependencies: the adding problem ---------------------------------------------------------
def test_adding_gated_cells_beat_the_baseline_and_rnn_does_not(adding_run):
    report, out = adding_run
    check_files(report, out)
    n = report.numbers
    for cell in ("lstm", "gru"):
        assert n[cell]["final_mse"] < adding.BASELINE / 4
        assert n[cell]["final_mse"] < n["rnn"]["final_mse"] / 10
    assert n["rnn"]["final_mse"] > adding.BASELINE / 2
    assert n["lstm"]["eval_steps"][0] == 0 and n["lstm"]["eval_steps"][-1] == adding.QUICK["steps"]


# --- 4. character-level language model ----------------------------------------------------------------------
def test_chars_loss_falls_from_ln_vocab(chars_run):
    report, out = chars_run
    check_files(report, out)
    n = report.numbers
    assert n["first_loss"] == pytest.approx(n["ln_vocab"], abs=0.3)
    assert n["final_smoothed_loss"] < n["ln_vocab"] - 1
    assert n["eval"][-1]["loss"] < n["eval"][0]["loss"] - 1
    assert [s["step"] for s in n["samples"]][0] == 0 and len(n["samples"]) >= 2
    assert all(len(s["text"]) == n["config"]["sample_length"] for s in n["samples"])


def test_chars_unrolled_window_has_one_cluster_per_step_with_gradients(chars_run):
    report, out = chars_run
    text = (out / "chars_unrolled.svg").read_text()
    window = report.numbers["config"]["window"]
    steps = set(re.findall(r">t=(\d+)<", text))
    assert steps == {str(t) for t in range(window)}
    assert "(log scale)" in text                      # the gradient legend is drawn


# --- the registry and the command line -----------------------------------------------------------------
def test_quick_runs_are_deterministic(gradients_run, tmp_path):
    report, out = gradients_run
    again, _ = run_experiment("gradients", str(tmp_path), quick=True, seed=0, log=lambda line: None)
    for name in ("gradients.json", "gradients.md", "gradients.svg"):
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes()


def test_parallel_runs_give_the_serial_results(clipping_run, tmp_path):
    report, out = clipping_run
    run_experiment("clipping", str(tmp_path), quick=True, seed=0, log=lambda line: None, jobs=2)
    assert (tmp_path / "clipping.json").read_bytes() == (out / "clipping.json").read_bytes()


def test_cli_runs_an_experiment(tmp_path, capsys):
    assert cli.main(["experiment", "gradients", "--quick", "--out", str(tmp_path), "--seed", "1"]) == 0
    printed = capsys.readouterr().out
    assert "linear: fitted rate" in printed and "gradients:" in printed
    assert json.loads((tmp_path / "gradients.json").read_text())["numbers"]["config"]["seed"] == 1


def test_cli_rejects_an_unknown_experiment(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["experiment", "nonsense"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown experiment 'nonsense'"):
        run_experiment("nonsense", "unused")


def test_registry_lists_every_experiment():
    assert list(EXPERIMENTS) == ["gradients", "clipping", "adding", "chars"]
