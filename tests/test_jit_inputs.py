"""tg.compile's inputs read in place: a replay reads the caller's array instead of copying it when the
plan can rebuild every reference it holds into the traced buffer, and copies it otherwise.

Every case compares replays on new input values with the eager step bit for bit (float64): a replay
that read a stale buffer (the trace's values) would differ. The caller's arrays are never written.
"""
import gc
import weakref

import numpy as np
import pytest

import tinygraph as tg
from rnn_models import LSTM, RNN

T, B, V, H = 6, 3, 4, 5
_LAST = {}   # a module global a step stores its input in (see test_a_module_global_keeps_it_copied)


def data(seed, T=T, B=B, V=V):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((T, B, V)), rng.integers(0, V, (T, B))


class Model(tg.nn.Module):
    def __init__(self, layer):
        super().__init__()
        self.rnn = layer(V, H)
        self.head = tg.nn.Linear(H, V)


def trainer(layer):
    """(model, step): the benchmark's step, whose cross-entropy op keeps ``targets`` as an attribute."""
    tg.manual_seed(3)
    model = Model(layer)
    opt = tg.optim.SGD(model.parameters(), lr=0.1)

    def step(x, targets):
        out = model.rnn(tg.Tensor._wrap(x))[0]
        loss = tg.linear_cross_entropy(out, model.head.weight, model.head.bias, targets)
        loss.backward()
        opt.step()
        opt.zero_grad()
        return loss.item()
    return model, step


def regression():
    """(model, step) whose inputs only feed ops: both are read in place."""
    tg.manual_seed(4)
    lin = tg.nn.Linear(V, V)
    opt = tg.optim.SGD(lin.parameters(), lr=0.1)

    def step(x, y):
        loss = tg.mse_loss(lin(tg.Tensor._wrap(x)), tg.Tensor._wrap(y))
        loss.backward()
        opt.step()
        opt.zero_grad()
        return loss
    return lin, step


def same_run(make, batches):
    """Eager and compiled runs of ``make()`` over ``batches`` agree bit for bit; returns the compiled
    step. Each batch is copied for the compiled run and checked unchanged after its call."""
    model1, eager = make()
    model2, step = make()
    compiled = tg.compile(step)
    for args in batches:
        kept = [np.array(a, copy=True) for a in args]
        r1, r2 = eager(*kept), compiled(*args)
        for a, k in zip(args, kept):
            assert np.array_equal(a, k)                       # the replay did not write into it
        if isinstance(r1, tg.Tensor):
            r1, r2 = r1.numpy().tobytes(), r2.numpy().tobytes()
        assert r1 == r2
        params = (lambda m: [m] if isinstance(m, tg.Tensor) else m.parameters())
        for p, q in zip(params(model1), params(model2)):
            assert np.array_equal(p.data, q.data)
    assert compiled.traces == 1
    return compiled


@pytest.mark.parametrize("layer", [RNN, LSTM])
def test_input_read_in_place_targets_kept_by_an_op_copied(layer):
    compiled = same_run(lambda: trainer(layer), [data(s) for s in range(4)])
    plan = compiled.plan
    assert plan.inputs_in_place == (0,)
    assert list(plan.inputs_copied) == [1] and "linear_cross_entropy" in plan.inputs_copied[1]
    assert "0 read in place" in repr(plan) and "1 copied (op 'linear_cross_entropy'" in repr(plan)
    assert "def replay(A0):" in plan.source


def test_inputs_that_only_feed_ops_are_both_read_in_place():
    batches = [(data(s)[0], data(s + 10)[0]) for s in range(4)]
    compiled = same_run(regression, batches)
    assert compiled.plan.inputs_in_place == (0, 1) and compiled.plan.inputs_copied == {}


def test_the_plan_does_not_keep_the_traced_buffer_of_an_input_read_in_place():
    refs = []

    def step(x, targets):
        refs.append(weakref.ref(x))          # a weak reference does not hold the buffer
        return tg.cross_entropy(tg.Tensor._wrap(x), targets).item()
    compiled = tg.compile(step)
    x, targets = data(0)
    compiled(x[0], targets[0])
    gc.collect()
    assert compiled.plan.inputs_in_place == (0,) and refs[0]() is None
    assert compiled.plan.persistent_bytes == targets[0].nbytes    # the copied targets' buffer only


@pytest.mark.parametrize("layout", ["sliced", "fortran", "unaligned", "read-only"])
def test_arguments_that_are_not_c_contiguous_unaligned_or_read_only(layout):
    """A slice, an F-ordered or an unaligned array is copied for that call only; a read-only array is
    read."""
    def arrange(x):
        if layout == "sliced":
            wide = np.zeros(x.shape[:-1] + (2 * V,))
            wide[..., ::2] = x
            return wide[..., ::2]
        if layout == "fortran":
            return np.asfortranarray(x)
        if layout == "unaligned":
            raw = np.zeros(x.nbytes + 1, np.uint8)
            moved = np.frombuffer(raw.data, x.dtype, x.size, offset=1).reshape(x.shape)
            moved[...] = x
            return moved
        x = x.copy()
        x.flags.writeable = False
        return x
    batches = [(arrange(x), t) for x, t in (data(s) for s in range(4))]
    flags = batches[1][0].flags
    assert layout == "read-only" or not (flags.c_contiguous and flags.aligned)
    compiled = same_run(lambda: trainer(RNN), batches)
    assert compiled.plan.inputs_in_place == (0,)


def test_changing_the_callers_array_after_a_replay_changes_no_result():
    w = tg.Tensor(np.linspace(0.5, 1.5, V))

    def step(x):
        leaf = tg.Tensor._wrap(x)
        return leaf[1], leaf.reshape(-1), (leaf * w).sum(), leaf + 0.0
    compiled = tg.compile(step)
    compiled(data(0)[0])
    assert compiled.plan.inputs_in_place == (0,)
    x = data(1)[0]
    result = compiled(x)
    expected = [r.numpy().copy() for r in step(x.copy())]
    x[...] = 7.0
    for r, e in zip(result, expected):
        assert np.array_equal(r.numpy(), e)


def test_views_taken_with_numpy_and_copies_into_leaves_are_rebuilt_on_each_argument():
    """Leaves over views with an offset and negative strides, and ``Tensor(...)`` copies from the
    input (also an array operand of an op), are made from the replay's argument."""
    def make():
        w = tg.Tensor(np.arange(1.0, V + 1), requires_grad=True)
        opt = tg.optim.SGD([w], lr=0.01)

        def step(x):
            tail = tg.Tensor._wrap(x[2:, 1:])
            flipped = tg.Tensor._wrap(x[:, ::-1, ::-1])
            copied = tg.Tensor(x[1])
            loss = (tail * w).sum() + (flipped ** 2 * w).sum() + (copied * w).mean() + (w * x[0]).sum()
            loss.backward()
            opt.step()
            opt.zero_grad()
            return loss
        return w, step
    compiled = same_run(make, [(data(s)[0],) for s in range(4)])
    assert compiled.plan.inputs_in_place == (0,)
    assert "ndarray((" in compiled.plan.source       # views rebuilt with their offsets and strides


def callback_case(kind):
    """A step whose ``io_callback`` reads the input through something the plan cannot rebind."""
    seen = []
    w = tg.Tensor(np.ones(V), requires_grad=True)

    def step(x):
        loss = (tg.Tensor._wrap(x) * w).sum()
        if kind == "closure":
            tg.io_callback(lambda value: seen.append((float(value), float(x.sum()))), loss)
        else:
            _LAST["x"] = x
            tg.io_callback(lambda value: seen.append((float(value), float(_LAST["x"].sum()))), loss)
        return loss.item()
    return step, seen


@pytest.mark.parametrize("kind", ["closure", "global"])
def test_an_input_a_callback_reaches_stays_copied(kind):
    eager, seen1 = callback_case(kind)
    step, seen2 = callback_case(kind)
    compiled = tg.compile(step)
    for seed in range(4):
        x = data(seed)[0][0]
        assert eager(x.copy()) == compiled(x)
    assert seen1 == seen2 and len(set(seen2)) == 4          # the callback saw each replay's input
    assert compiled.plan.inputs_in_place == () and "io_callback" in compiled.plan.inputs_copied[0]


def test_a_module_global_keeps_it_copied():
    def step(x):
        globals()["_HELD_BY_A_GLOBAL"] = x
        return tg.Tensor._wrap(x).sum().item()
    compiled = tg.compile(step)
    try:
        compiled(data(0)[0])
        assert compiled.plan.inputs_copied == {0: "a module global refers to it"}
    finally:
        del globals()["_HELD_BY_A_GLOBAL"]


def test_other_references_keep_an_input_copied():
    """An op attribute, the step's result, a leaf requiring grad, a write during the trace, an array
    over the input's memory made through a memoryview: copied, with the reason."""
    def result(x):
        return tg.Tensor._wrap(x)

    def grad_leaf(x):
        leaf = tg.Tensor._wrap(x, requires_grad=True)
        loss = (leaf * leaf).sum()
        loss.backward()
        return loss

    def written(x):
        x *= 2.0
        return tg.Tensor._wrap(x).sum()

    def memoryview_leaf(x):
        return tg.Tensor._wrap(np.asarray(memoryview(x))).sum()

    def getitem_index(x, ids):
        return tg.Tensor._wrap(x)[ids].sum()

    cases = {result: "the step's result", grad_leaf: "requires grad", written: "wrote into it",
             memoryview_leaf: "leaf", getitem_index: "op 'getitem'"}
    for step, reason in cases.items():
        compiled = tg.compile(step)
        x = data(0)[0][0]
        args = (x, np.array([0, 2])) if step is getitem_index else (x,)
        compiled(*args)
        position = 1 if step is getitem_index else 0
        assert reason in compiled.plan.inputs_copied[position], (step.__name__, compiled.plan)
        x2 = data(1)[0][0]
        args2 = (x2, np.array([1, 1])) if step is getitem_index else (x2,)
        if step is not written:             # numpy code writing into x runs once, at trace time
            r1, r2 = step(*(np.array(a, copy=True) for a in args2)), compiled(*args2)
            assert np.array_equal(r1.numpy(), r2.numpy())
