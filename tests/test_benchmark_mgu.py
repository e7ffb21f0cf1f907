"""The user's-cell benchmark (``benchmarks.mgu``): the hand-written numpy MGU step computes what
tinygraph's ``Recurrent(MinimalGatedUnit)`` computes, the harness runs end to end on a tiny point, and
the README's block is generated from the saved run (timings are reported, never asserted)."""
import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks import mgu

ROOT = Path(__file__).resolve().parent.parent
B, H, V, T = 3, 5, 4, 6


def tiny(dtype="float64", seed=0):
    return mgu.init_params(H, V, seed, dtype), *mgu.make_data(B, V, T, seed + 1, dtype)


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-10), ("float32", 2e-5)])
def test_hand_written_step_equals_tinygraph_loss_and_every_gradient(dtype, tol):
    params, x, targets = tiny(dtype)
    loss_np, grads_np, _ = mgu.numpy_loss_and_grads(params, x, targets)
    loss_tg, grads_tg = mgu.tinygraph_loss_and_grads(params, x, targets)
    assert abs(loss_tg - loss_np) <= tol * max(1, abs(loss_np))
    assert set(grads_tg) == set(grads_np) == set(mgu.PARAM_NAMES)
    for name in mgu.PARAM_NAMES:
        assert grads_np[name].dtype == grads_tg[name].dtype == np.dtype(dtype), name
        assert np.abs(grads_np[name]).max() > 1e-4, name   # every parameter gets a real gradient
        np.testing.assert_allclose(grads_np[name], grads_tg[name], rtol=tol, atol=tol, err_msg=name)


def test_hand_written_gradients_match_central_differences():
    """The numpy BPTT against the loss it differentiates, independently of tinygraph."""
    params, x, targets = tiny()
    grads = mgu.numpy_loss_and_grads(params, x, targets)[1]
    rng, eps = np.random.default_rng(0), 1e-6
    for name in mgu.PARAM_NAMES:
        for index in [tuple(rng.integers(0, n) for n in params[name].shape) for _ in range(3)]:
            moved = {}
            for sign in (1, -1):
                shifted = {n: p.copy() for n, p in params.items()}
                shifted[name][index] += sign * eps
                moved[sign] = mgu.numpy_loss_and_grads(shifted, x, targets)[0]
            numeric = (moved[1] - moved[-1]) / (2 * eps)
            assert abs(grads[name][index] - numeric) < 1e-8, (name, index)


def test_model_is_the_users_cell_with_the_parameters_given():
    params, x, _ = tiny()
    model = mgu.build(params, "float64")
    assert type(model.rnn.cell).__name__ == "MinimalGatedUnit" and model.rnn.cell.__module__ == "examples.cells"
    assert {n: p.shape for n, p in mgu.model_params(model).items()} == mgu.param_shapes(H, V)
    assert all(np.array_equal(mgu.model_params(model)[n], params[n]) for n in mgu.PARAM_NAMES)


def test_check_compares_eager_and_compiled_steps_and_catches_a_wrong_gradient(monkeypatch):
    out = mgu.check("float64")
    assert out["ok"] and out["tol"] == 1e-10
    assert max(out[k] for k in ("loss", "grads", "step_losses", "step_params")) <= 1e-12
    exact = mgu.numpy_loss_and_grads

    def off_by_a_little(params, x, targets, ws=None):
        loss, grads, ws = exact(params, x, targets, ws)
        grads["forget.weight"][0, 0] += 1e-6
        return loss, grads, ws
    monkeypatch.setattr(mgu, "numpy_loss_and_grads", off_by_a_little)
    wrong = mgu.check("float64")
    assert not wrong["ok"] and 5e-7 < wrong["grads"] < 2e-6


def test_numpy_step_updates_parameters_by_sgd_and_reuses_its_workspace():
    params, x, targets = tiny()
    before = {n: p.copy() for n, p in params.items()}
    loss, grads, ws = mgu.numpy_loss_and_grads(before, x, targets)
    stepped, step = mgu.make_numpy_step("float64", B, H, V, T, seed=0)
    assert step(x, targets) == loss
    for name in mgu.PARAM_NAMES:
        np.testing.assert_allclose(stepped[name], before[name] - mgu.LR * grads[name], rtol=0, atol=1e-15)
    assert mgu.numpy_loss_and_grads(before, x, targets, ws)[2] is ws


@pytest.mark.parametrize("change,message", [
    (lambda p, x, t: (p, x.astype(np.float32), t), "share one dtype"),
    (lambda p, x, t: (dict(p, **{"forget.weight": p["forget.weight"][:, :-1]}), x, t),
     "do not fit x (6, 3, 4) with H = 5"),
    (lambda p, x, t: (p, x[0], t), "x must be (T, B, V)"),
    (lambda p, x, t: (p, x, t[:-1]), "targets must be integers of shape (T, B) = (6, 3)"),
    (lambda p, x, t: ({n: v for n, v in p.items() if n != "head.bias"}, x, t), "params lack ['head.bias']"),
])
def test_bad_input_is_refused_naming_what_does_not_fit(change, message):
    params, x, targets = change(*tiny())
    with pytest.raises((ValueError, TypeError, KeyError)) as error:
        mgu.numpy_loss_and_grads(params, x, targets)
    assert "benchmarks.mgu.numpy_loss_and_grads" in str(error.value) and message in str(error.value)


def test_harness_checks_times_and_reports_a_tiny_point(tmp_path, capsys):
    out = tmp_path / "mgu.json"
    assert mgu.main(["--points", "2,4,3,5", "--rounds", "2", "--dtypes", "float64", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    (row,) = result["rows"]
    assert (row["dtype"], row["B"], row["H"], row["V"], row["T"]) == ("float64", 2, 4, 3, 5)
    assert set(row["ms"]) == set(row["best_ms"]) == set(mgu.IMPLS)
    assert all(0 < row["best_ms"][i] <= row["ms"][i] for i in mgu.IMPLS)
    assert row["steps_each"] == mgu.WARMUP + 2 * (1 + row["steps_per_round"])
    assert all(max(a.values()) <= 1e-12 for a in row["agreement"].values())
    assert row["cpus_allowed"] == 1 and row["blas_threads"] in (1, None)   # None: no threadpoolctl
    assert result["checks"]["float64"]["ok"] and result["machine"]["cpu"]["model"]
    table = mgu.markdown(result)
    assert "| float64 | (2, 4, 3, 5) |" in table and table.splitlines()[0].count("|") == 9
    assert "compiled / (b) over the 1 rows" in capsys.readouterr().out


def _result(rows, bar=2.0):
    check = {k: 1e-16 for k in ("loss", "grads", "step_losses", "step_params")}
    return dict(rows=[dict(dtype="float64", B=b, H=h, V=v, T=t, ms=ms, best_ms=ms, steps_each=12,
                           agreement={"tinygraph": {"step_losses": 0.0, "final_params": 3e-16}},
                           cpu_over_wall=1.0, blas_threads=1) for (b, h, v, t), ms in rows],
                checks={"float64": check}, bar=bar)


def test_the_bar_is_met_only_when_every_row_meets_it():
    fast = {"numpy_per_step": 1.0, "tinygraph": 3.0, "tinygraph_compiled": 1.5}
    slow = {"numpy_per_step": 1.0, "tinygraph": 4.0, "tinygraph_compiled": 2.5}
    met = " ".join(mgu.claims(_result([((1, 32, 16, 25), fast)])))
    assert "compiled / (b) over the 1 rows: 1.50× of the median step, 1.50× of the best (met: ≤ 2" in met
    assert "eager / (b): 3.00×; compiled / eager: 0.50×" in met
    mixed = " ".join(mgu.claims(_result([((1, 32, 16, 25), fast), ((1, 16, 8, 1000), slow)])))
    assert "1.50–2.50× of the median step" in mixed
    assert "(not met: ≤ 2 at every row; over it at (1, 16, 8, 1000) float64)" in mixed
    assert "within 3e-16 (float64) of (b)'s" in mixed


def test_readme_block_is_generated_from_the_saved_run():
    """Between its markers the README's MGU block is exactly what benchmarks.mgu makes of the run it
    cites — the machine, the table and every ratio in the sentences."""
    readme = (ROOT / "README.md").read_text()
    match = mgu.BEGIN_PATTERN.search(readme)
    assert match and match.group(1) == "docs/mgu_benchmark.json"
    assert mgu.replace_in(readme, load=lambda path: json.loads((ROOT / path).read_text())) == readme


@pytest.mark.parametrize("argv,message", [(["--dtypes", "float16"], "--dtypes: unknown dtype 'float16'"),
                                          (["--rounds", "0"], "--rounds must be at least 1"),
                                          (["--points", "1,2,3"], "four positive integers B,H,V,T")])
def test_bad_flags_are_refused_by_the_argument_parser(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        mgu.main(argv + ["--json", "/dev/null"])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
