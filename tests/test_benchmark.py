"""The training-step benchmark: tinygraph computes what the hand-written BPTT computes, and the
harness runs end to end on a tiny grid (timings are reported by the script, never asserted)."""
import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks import baselines, chain, memory, run, tinygraph_impl


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
    (memory,) = result["memory"]
    assert memory["peak_mb"]["tinygraph"] > 0
    table = run.markdown(result)
    assert "| tg/(b) |" in table and "| rnn | float64 | (2, 8, 5, 6) |" in table
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
    assert table[0] == "| cell | dtype | (B, H, V, T) | tinygraph |"
    assert table[2].startswith("| lstm | float32 | (2, 4, 3, 5) | ") and len(table) == 3


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
