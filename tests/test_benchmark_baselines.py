"""Correctness tests for benchmarks/baselines.py (no timing here)."""

import numpy as np
import pytest

from benchmarks import baselines as bl

B, H, V, T = 3, 5, 4, 6
SEED = 0


def _problem(cell, dtype="float64"):
    params = bl.init_params(cell, H, V, SEED, dtype)
    x, targets = bl.make_data(B, V, T, SEED, dtype)
    return params, x, targets


def _assert_grads_close(got, want, tol):
    assert set(got) == set(bl.PARAM_NAMES) == set(want)
    for name in bl.PARAM_NAMES:
        assert got[name].shape == want[name].shape, name
        np.testing.assert_allclose(got[name], want[name], rtol=tol, atol=tol, err_msg=name)


def test_init_and_data_are_deterministic():
    p1, p2 = bl.init_params("lstm", H, V, 7, "float64"), bl.init_params("lstm", H, V, 7, "float64")
    for name in bl.PARAM_NAMES:
        np.testing.assert_array_equal(p1[name], p2[name])
        assert np.all(np.abs(p1[name]) <= 1 / np.sqrt(H))
    assert p1["weight_ih_l0"].shape == (4 * H, V)
    assert not np.array_equal(p1["head.weight"], bl.init_params("lstm", H, V, 8, "float64")["head.weight"])

    x, targets = bl.make_data(B, V, T, 7, "float32")
    assert x.shape == (T, B, V) and x.dtype == np.float32
    np.testing.assert_array_equal(x.sum(axis=2), 1)
    assert targets.shape == (T, B) and targets.dtype == np.int64
    assert targets.min() >= 0 and targets.max() < V
    np.testing.assert_array_equal(x, bl.make_data(B, V, T, 7, "float32")[0])


@pytest.mark.parametrize("cell", bl.CELLS)
def test_numpy_impls_agree(cell):
    params, x, targets = _problem(cell)
    loss_b, grads_b = bl.loss_and_grads("numpy_per_step", cell, params, x, targets)
    loss_c, grads_c = bl.loss_and_grads("numpy_batched", cell, params, x, targets)
    assert abs(loss_b - loss_c) < 1e-12
    _assert_grads_close(grads_c, grads_b, 1e-12)
    # Near init the predictions are close to uniform.
    assert abs(loss_b - np.log(V)) < 0.5


@pytest.mark.parametrize("impl", bl.NUMPY_IMPLS)
@pytest.mark.parametrize("cell", bl.CELLS)
def test_numpy_grads_match_central_differences(impl, cell):
    params, x, targets = _problem(cell)
    _, grads = bl.loss_and_grads(impl, cell, params, x, targets)
    rng = np.random.default_rng(1)
    eps = 1e-6
    for name in bl.PARAM_NAMES:
        p = params[name]
        for _ in range(3):
            idx = tuple(int(rng.integers(n)) for n in p.shape)
            orig = p[idx]
            p[idx] = orig + eps
            loss_plus, _ = bl.loss_and_grads(impl, cell, params, x, targets)
            p[idx] = orig - eps
            loss_minus, _ = bl.loss_and_grads(impl, cell, params, x, targets)
            p[idx] = orig
            numeric = (loss_plus - loss_minus) / (2 * eps)
            assert abs(numeric - grads[name][idx]) < 1e-8 + 1e-6 * abs(numeric), (name, idx)


@pytest.mark.parametrize("impl", bl.TORCH_IMPLS)
@pytest.mark.parametrize("cell", bl.CELLS)
def test_torch_impls_match_numpy(impl, cell):
    pytest.importorskip("torch")
    params, x, targets = _problem(cell)
    loss_ref, grads_ref = bl.loss_and_grads("numpy_per_step", cell, params, x, targets)
    loss, grads = bl.loss_and_grads(impl, cell, params, x, targets)
    assert abs(loss - loss_ref) < 1e-10
    _assert_grads_close(grads, grads_ref, 1e-10)


@pytest.mark.parametrize("cell", bl.CELLS)
def test_training_steps_agree_across_impls(cell):
    """make_step/step_fn: same losses and same updated params for every impl."""
    x, targets = bl.make_data(B, V, T, SEED, "float64")
    results = {}
    for impl in bl.available_impls():
        params, step = bl.make_step(impl, cell, "float64", B, H, V, T, SEED)
        losses = [step(x, targets) for _ in range(3)]
        results[impl] = losses, bl.params_to_numpy(params)

    ref_losses, ref_params = results["numpy_per_step"]
    assert ref_losses[2] < ref_losses[0]  # SGD on a fixed batch makes progress
    for impl, (losses, params) in results.items():
        np.testing.assert_allclose(losses, ref_losses, rtol=0, atol=1e-10, err_msg=impl)
        _assert_grads_close(params, ref_params, 1e-10)

    # One numpy step equals params - lr * grads.
    params0 = bl.init_params(cell, H, V, SEED, "float64")
    _, grads0 = bl.loss_and_grads("numpy_batched", cell, params0, x, targets)
    params, step = bl.make_step("numpy_batched", cell, "float64", B, H, V, T, SEED)
    step(x, targets)
    for name in bl.PARAM_NAMES:
        np.testing.assert_allclose(params[name], params0[name] - bl.LR * grads0[name], atol=1e-15)


@pytest.mark.parametrize("impl", bl.NUMPY_IMPLS)
@pytest.mark.parametrize("cell", bl.CELLS)
def test_float32_stays_float32(impl, cell):
    params32, x32, targets = _problem(cell, "float32")
    loss32, grads32 = bl.loss_and_grads(impl, cell, params32, x32, targets)
    assert all(g.dtype == np.float32 for g in grads32.values())
    params64, x64, _ = _problem(cell, "float64")
    loss64, grads64 = bl.loss_and_grads(impl, cell, params64, x64, targets)
    assert abs(loss32 - loss64) < 1e-5
    _assert_grads_close(grads32, grads64, 1e-5)

    params, step = bl.make_step(impl, cell, "float32", B, H, V, T, SEED)
    step(x32, targets)
    assert all(p.dtype == np.float32 for p in params.values())

    with pytest.raises(TypeError):  # float64 data into a float32 model
        bl.loss_and_grads(impl, cell, params32, x64, targets)
