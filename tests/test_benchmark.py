"""The training-step benchmark: tinygraph computes what the hand-written BPTT computes, and the
harness runs end to end on a tiny grid (timings are reported by the script, never asserted)."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

import tinygraph as tg
from benchmarks import baselines, chain, claims, memory, run, tinygraph_impl


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-12), ("float32", 2e-5)])
@pytest.mark.parametrize("cell", baselines.CELLS)
def test_tinygraph_step_equals_hand_written_bptt(cell, dtype, tol):
    params = baselines.init_params(cell, 5, 4, seed=0, dtype=dtype)
    x, targets = baselines.make_data(3, 4, 6, seed=1, dtype=dtype)
    loss_np, grads_np = baselines.loss_and_grads("numpy_per_step", cell, params, x, targets)
    loss_tg, grads_tg = tinygraph_impl.loss_and_grads(cell, params, x, targets)
    assert loss_tg == pytest.approx(loss_np, rel=tol)
    assert grads_tg.keys() == grads_np.keys()
    for name in grads_np:
        assert grads_tg[name].dtype == np.dtype(dtype), name
        np.testing.assert_allclose(grads_tg[name], grads_np[name], rtol=tol, atol=tol, err_msg=name)


def test_harness_runs_on_the_smoke_grid(tmp_path):
    out = tmp_path / "result.json"
    assert run.main(["--grid", "smoke", "--rounds", "1", "--cells", "rnn", "--dtypes", "float64",
                     "--impls", "tinygraph,numpy_per_step", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    (row,) = result["rows"]
    assert set(row["ms"]) == {"tinygraph", "numpy_per_step"} and all(v > 0 for v in row["ms"].values())
    assert set(row["best_ms"]) == set(row["ms"]) and all(0 < row["best_ms"][k] <= row["ms"][k] for k in row["ms"])
    (memory,) = result["memory"]
    assert memory["peak_mb"]["tinygraph"] > 0
    table = run.markdown(result)
    assert "| eager/(b) |" in table and "| rnn | float64 | (2, 8, 5, 6) |" in table
    assert table.splitlines()[-1].startswith("| rnn | ") and " MB | " in table


def test_memory_hook_counts_what_backward_reads_of_a_cell_from_primitives():
    """The figures come from ``python -m benchmarks.memory``; here only what they count is checked:
    per step z, 1 - z, tanh(...) and the new h, each (B, H), nothing of the matmuls or products."""
    B, H, T = 4, 32, 20  # (4, 32) float64: 1 KiB values, worth releasing (tinygraph.release.MIN_BYTES)
    result = memory.gated_cell_memory(B, H, T)
    step = T * B * H * 8
    assert result["saved_by_op"] == {"sigmoid": step, "sub": step, "tanh": step, "add": step, "sum": 8}
    assert result["saved_bytes"] == 4 * step + 8 < result["peak_bytes"]


def test_chain_microbenchmark_reports_cpu_times():
    result = chain.measure((2, 2), steps=10, chains=1, repeats=1)
    assert set(result) == {"forward_us", "forward_backward_us"} and all(v > 0 for v in result.values())


def test_harness_takes_points_and_records_the_allocator_setting(tmp_path):
    out = tmp_path / "result.json"
    assert run.main(["--points", "2,4,3,5", "--rounds", "1", "--cells", "lstm", "--dtypes", "float32",
                     "--impls", "tinygraph", "--no-memory", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    (row,) = result["rows"]
    assert (row["cell"], row["B"], row["H"], row["V"], row["T"]) == ("lstm", 2, 4, 3, 5)
    assert result["memory"] == [] and result["keep_freed_memory"] is True
    table = run.markdown(result).splitlines()
    assert table[0] == "| cell | dtype | (B, H, V, T) | tinygraph eager |"
    assert table[2].startswith("| lstm | float32 | (2, 4, 3, 5) | ") and len(table) == 3


needs_jax = pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")


@needs_jax
def test_jax_step_equals_hand_written_bptt():
    """Loss, gradients and two SGD steps of the jitted scan against (b), every cell and dtype, in a
    worker process (jax is never loaded here: its threads would make the suite's later forks unsafe)."""
    combos = [[cell, dtype] for cell in baselines.CELLS for dtype in baselines.DTYPES]
    checks = run.measure(dict(impl="jax", seed=0, check=combos), threads=1)
    for combo, out in checks.items():
        tol = 1e-12 if combo.endswith("float64") else 2e-5
        assert out["ok"] and out["grad_dtypes_ok"], (combo, out)
        assert max(out["loss"], out["grads"], out["step_losses"], out["step_params"]) < tol, (combo, out)


@needs_jax
def test_smoke_grid_with_jax_checks_times_and_states_the_machine(tmp_path):
    """JAX runs beside the others after its check against (b), bound to one CPU, compile timed apart;
    the run records the machine, and the generated section names it."""
    out = tmp_path / "result.json"
    assert run.main(["--grid", "smoke", "--rounds", "1", "--cells", "lstm", "--dtypes", "float64",
                     "--impls", "tinygraph,numpy_batched,jax", "--no-memory", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    (row,) = result["rows"]
    assert set(row["ms"]) == {"tinygraph", "numpy_batched", "jax"} and row["compile_ms"]["jax"] > 0
    assert row["cpus_allowed"] == {"tinygraph": 1, "numpy_batched": 1, "jax": 1}
    check = result["checks"]["jax"]["lstm/float64"]
    assert check["ok"] and check["grads"] < 1e-12 and check["step_params"] < 1e-12
    assert result["machine"]["jax"]["jax"] and result["machine"]["numpy"]["blas"]
    text = claims.section(result, "RUN.json")
    assert "(f) JAX jit+scan" in text and result["machine"]["cpu"]["model"] in text
    assert "JAX's compile time per shape" in text and "tinygraph eager / (f) JAX" in text


def test_unavailable_implementations_are_named_and_skipped(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(run, "unavailable", lambda impl: "not here" if impl == "jax" else None)
    out = tmp_path / "result.json"
    assert run.main(["--grid", "smoke", "--rounds", "1", "--cells", "rnn", "--dtypes", "float32",
                     "--impls", "numpy_per_step,jax", "--no-memory", "--json", str(out)]) == 0
    assert "jax: not available, skipped: not here" in capsys.readouterr().out
    result = json.loads(out.read_text())
    assert set(result["rows"][0]["ms"]) == {"numpy_per_step"} and result["not_available"] == {"jax": "not here"}
    assert "Not in this run: (f) JAX jit+scan (not here)." in claims.section(result, "RUN.json")


def test_compiled_row_wraps_the_eager_step_in_tg_compile(monkeypatch):
    """Without tg.compile the compiled row is refused with a reason; with it (here a stand-in that
    records what it wraps), the step is the eager step through tg.compile."""
    if not hasattr(tg, "compile"):
        assert run.unavailable("tinygraph_compiled") == "tinygraph.compile does not exist in this version"
        with pytest.raises(tinygraph_impl.NotAvailable):
            tinygraph_impl.make_step("rnn", "float64", 2, 4, 3, 5, 0, compiled=True)
    wrapped = []
    monkeypatch.setattr(tg, "compile", lambda fn: wrapped.append(fn) or fn, raising=False)
    assert run.unavailable("tinygraph_compiled") is None
    x, targets = baselines.make_data(2, 3, 5, 1, "float64")
    _, compiled = tinygraph_impl.make_step("rnn", "float64", 2, 4, 3, 5, 0, compiled=True)
    _, eager = tinygraph_impl.make_step("rnn", "float64", 2, 4, 3, 5, 0)
    assert len(wrapped) == 1 and [compiled(x, targets) for _ in range(2)] == [eager(x, targets)
                                                                            for _ in range(2)]


def _result(ms_rows, **extra):
    rows = [dict(cell="rnn", dtype="float64", B=b, H=h, V=v, T=t, ms=ms) for (b, h, v, t), ms in ms_rows]
    return dict(rows=rows, memory=[], **extra)


def test_claims_say_only_what_the_rows_show():
    """An ordering is claimed at every row only when every row shows it; otherwise the count."""
    mixed = _result([((1, 32, 16, 25), {"tinygraph": 1.0, "numpy_batched": 0.5, "torch_loop": 2.0}),
                     ((32, 128, 64, 50), {"tinygraph": 3.0, "numpy_batched": 2.0, "torch_loop": 2.5})])
    sentences = claims.claims(mixed)
    assert "tinygraph eager / (d) torch loop: 0.50–1.20×, faster than (d) torch loop at 1 of 2 rows." \
        in sentences
    assert not any("every row" in s and "(d)" in s for s in sentences)
    faster = _result([((1, 32, 16, 25), {"tinygraph": 1.0, "numpy_batched": 0.5, "torch_loop": 2.0})])
    assert "faster than (d) torch loop at every row of this run" in " ".join(claims.claims(faster))


def test_compiled_bars_are_reported_met_or_not():
    ms = {"tinygraph": 2.0, "tinygraph_compiled": 0.9, "numpy_batched": 0.5, "jax": 0.3}
    big = {"tinygraph": 300.0, "tinygraph_compiled": 290.0, "numpy_batched": 280.0, "jax": 350.0}
    text = " ".join(claims.claims(_result([((1, 32, 16, 25), ms), ((64, 512, 128, 100), big)])))
    assert "compiled / (c) at every row 1.04–1.80× (not met: ≤ 1.5)" in text
    assert "compiled / eager at B = 1 0.45× (met: ≤ 0.5)" in text
    assert "at (64, 512, 128, 100) 0.83× (met: < 1.0)" in text
    assert "best step" not in text                          # a run without best_ms: medians only


def test_compiled_bars_on_the_best_steps_are_stated_beside_the_medians():
    median = {"tinygraph": 2.0, "tinygraph_compiled": 0.9, "numpy_batched": 0.5, "jax": 0.3}
    best = {"tinygraph": 1.8, "tinygraph_compiled": 0.6, "numpy_batched": 0.45, "jax": 0.3}
    result = _result([((1, 32, 16, 25), median)])
    result["rows"][0]["best_ms"] = best
    sentences = claims.claims(result)
    (on_medians,) = [s for s in sentences if s.startswith("tinygraph compiled against its bars")]
    (on_best,) = [s for s in sentences if s.startswith("The same bars on each implementation's best step")]
    assert "compiled / (c) at every row 1.80× (not met: ≤ 1.5)" in on_medians
    assert "compiled / (c) at every row 1.33× (met: ≤ 1.5)" in on_best
    assert "compiled / eager at B = 1 0.33× (met: ≤ 0.5)" in on_best


def test_readme_performance_section_is_generated_from_its_run():
    """Between its markers the README's performance section is exactly what benchmarks.claims makes
    of the run it cites: the machine, the tables and every ratio or ordering in its sentences."""
    root = Path(__file__).resolve().parent.parent
    readme = (root / "README.md").read_text()
    match = claims.BEGIN_PATTERN.search(readme)
    assert match, "README has no generated benchmark block"
    assert claims.replace_in(readme, load=lambda path: json.loads((root / path).read_text())) == readme


def test_readme_tables_are_the_saved_run():
    """The README's performance tables are exactly what --markdown prints for docs/benchmark.json."""
    root = Path(__file__).resolve().parent.parent
    saved = json.loads((root / "docs" / "benchmark.json").read_text())
    assert run.markdown(saved) in (root / "README.md").read_text()


@pytest.mark.parametrize("points", ["32,128,64", "1,2,3,x", "1,2,3,0", "1,2,3,4;"])
def test_bad_points_are_refused_by_the_argument_parser(points, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run.main(["--points", points, "--json", "/dev/null"])
    assert exit_info.value.code == 2
    assert "four positive integers B,H,V,T" in capsys.readouterr().err
