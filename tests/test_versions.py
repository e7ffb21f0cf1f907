"""Version counters: an in-place write into a value a gradient rule reads is an error at backward,
never a silently wrong gradient — whichever public path the write takes."""
import sys
import threading

import numpy as np
import pytest

import rnn_models
import tinygraph as tg


def saved_leaf():
    """x = [2.], loss = sum(x * x): mul saves x, so d loss/dx = 2x = 4 depends on x's saved value."""
    x = tg.tensor([2.0], requires_grad=True, name="x")
    return x, (x * x).sum()


def write_item(x): x.data[:] = 5.0
def rebind(x): x.data = np.array([5.0])
def augmented(x): x.data += 3.0
def ufunc_out(x): np.add(x.data, 3.0, out=x.data)
def ufunc_at(x): np.add.at(x.data, [0], 3.0)
def fill(x): x.data.fill(5.0)
def copyto(x): np.copyto(x.data, np.array([5.0]))
def putmask(x): np.putmask(x.data, np.array([True]), 5.0)
def through_numpy(x): x.numpy()[0] = 5.0
def view_of_view(x): x.data[0:1].reshape(1, 1)[0, 0] = 5.0
def held_array(x):
    array = x.data  # taken before, written later
    array *= 2.0
def in_place_method(x):
    with tg.no_grad():
        x.add_(3.0)
def copy_method(x):
    with tg.no_grad():
        x.copy_(np.array([7.0]))
def optimizer_step(x):
    x.grad = np.ones(1)
    tg.optim.SGD([x], lr=0.5).step()
def escape_hatch(x):
    memoryview(x.numpy())[0] = 5.0  # unseen by numpy's Python API: the user says so
    tg.increment_version(x)


WRITERS = [write_item, rebind, augmented, ufunc_out, ufunc_at, fill, copyto, putmask, through_numpy,
           view_of_view, held_array, in_place_method, copy_method, optimizer_step, escape_hatch]


@pytest.mark.parametrize("write", WRITERS, ids=lambda f: f.__name__)
def test_a_write_between_forward_and_backward_is_refused(write):
    x, loss = saved_leaf()
    before = x.version
    write(x)
    assert x.version > before
    with pytest.raises(tg.GraphError, match=r"input 0 of op 'mul' \('x', shape \(1,\), float64\) was "
                                            r"modified in place .* at version \d+, the op saved version 0"):
        loss.backward()
    assert x.grad is None or write is optimizer_step  # nothing was accumulated


def test_the_issue_example_gave_10_and_now_refuses():
    x = tg.tensor([2.0], requires_grad=True)
    y = (x * x).sum()
    x.data[:] = 5
    with pytest.raises(tg.GraphError, match="modified in place"):
        y.backward()


def test_writing_an_ops_saved_output_is_refused():
    x = tg.tensor([0.5, 1.0], requires_grad=True)
    e = tg.exp(x)  # exp's rule reads its output
    loss = e.sum()
    e.data[0] = 0.0
    with pytest.raises(tg.GraphError, match=r"its output of op 'exp'"):
        loss.backward()


def test_a_write_through_a_view_op_reaches_the_base():
    x = tg.tensor(np.arange(1.0, 5.0), requires_grad=True)
    loss = (x * x).sum()
    y = x.reshape(2, 2)  # numpy view: shares x's memory
    y.data[0, 0] = 9.0
    with pytest.raises(tg.GraphError, match="modified in place"):
        loss.backward()


def test_a_write_through_detach_reaches_the_original():
    x = tg.tensor([2.0], requires_grad=True)
    loss = (x * x).sum()
    d = x.detach()
    d.data[0] = 5.0
    assert x.data[0] == 5.0  # shared memory, as in PyTorch
    with pytest.raises(tg.GraphError):
        loss.backward()


def test_create_graph_backward_checks_too():
    x = tg.tensor([2.0], requires_grad=True)
    (g,) = tg.grad_of((x * x * x).sum(), x, create_graph=True)
    x.data[0] = 1.0
    with pytest.raises(tg.GraphError, match="modified in place"):
        g.sum().backward()


def test_retained_graph_after_an_optimizer_step_is_refused():
    w = tg.tensor([1.0, -1.0], requires_grad=True)
    loss = (w * w).sum()
    loss.backward(retain_graph=True)
    tg.optim.SGD([w], lr=0.1).step()
    with pytest.raises(tg.GraphError, match="version 1, the op saved version 0"):
        loss.backward()


# --- no false alarms ------------------------------------------------------------------------------
def test_writes_before_forward_after_backward_or_elsewhere_are_fine():
    x = tg.tensor([2.0], requires_grad=True)
    other = tg.tensor([1.0, 2.0])
    x.data[:] = 3.0                       # before the forward
    loss = (x * x).sum()
    other.data[:] = 0.0                   # unrelated memory: the clock moved, nothing x's node read
    loss.backward()
    np.testing.assert_array_equal(x.grad, [6.0])
    x.data[:] = 7.0                       # after backward
    assert x.version == 2


def test_a_write_into_a_value_no_rule_reads_is_not_an_error():
    """add's rule reads no input value, so writing x after x + 1 changes no gradient (PyTorch agrees)."""
    x = tg.tensor([2.0], requires_grad=True)
    loss = (x + 1.0).sum()
    x.data[:] = 100.0
    loss.backward()
    np.testing.assert_array_equal(x.grad, [1.0])


def test_a_training_loop_with_steps_between_iterations_runs():
    model = rnn_models.LSTM(3, 4)
    opt = tg.optim.Adam(model.parameters(), lr=0.01)
    x = np.random.default_rng(0).standard_normal((5, 2, 3))
    versions = []
    for _ in range(3):
        out, _ = model(x)
        opt.zero_grad()
        (out * out).sum().backward()
        opt.step()
        versions.append(model.weight_hh_l0.version)
    assert versions == [1, 2, 3]


def test_augmented_assignment_counts_one_write_and_keeps_the_buffer():
    x = tg.tensor([1.0, 2.0])
    buffer = x._data
    x.data += 1.0
    assert x.version == 1 and x._data is buffer
    np.testing.assert_array_equal(x.data, [2.0, 3.0])


def test_arrays_np_asarray_hands_out_are_read_only():
    x = tg.tensor([1.0, 2.0])
    view = np.asarray(x)
    with pytest.raises(ValueError, match="read-only"):
        view[0] = 5.0
    copy = np.array(x)
    copy[0] = 5.0
    assert x.data[0] == 1.0 and x.version == 0


def test_the_data_view_behaves_like_an_ndarray():
    x = tg.tensor([[1.0, 2.0], [3.0, 4.0]])
    d = x.data
    assert isinstance(d, np.ndarray) and repr(d) == repr(np.array([[1.0, 2.0], [3.0, 4.0]]))
    assert type(d + 1) is np.ndarray and type(np.sum(d)) is not type(d)  # results are plain
    assert x.version == 0  # reading writes nothing


# --- the in-place methods -----------------------------------------------------------------------
def test_in_place_methods_compute_and_return_self():
    x = tg.tensor([1.0, 2.0])
    assert x.add_(1.0) is x
    x.mul_(tg.tensor(2.0)).sub_(np.array([1.0, 1.0]), alpha=0.5).div_(2.0)
    np.testing.assert_allclose(x.data, [((1 + 1) * 2 - 0.5) / 2, ((2 + 1) * 2 - 0.5) / 2])
    x.fill_(3.0)
    np.testing.assert_array_equal(x.data, [3.0, 3.0])
    x.zero_()
    np.testing.assert_array_equal(x.data, [0.0, 0.0])
    assert x.version == 6


def test_in_place_methods_refuse_what_would_be_wrong():
    w = tg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(tg.GraphError, match=r"add_: in-place write into a tensor that requires grad.*no_grad"):
        w.add_(1.0)
    x = tg.tensor([1.0, 2.0])
    with pytest.raises(tg.ShapeError, match=r"copy_: a value of shape \(3,\) does not broadcast to .* \(2,\)"):
        x.copy_(np.ones(3))
    ints = tg.tensor([1, 2])
    with pytest.raises(tg.DTypeError, match="cannot write float64 values into a int64 tensor"):
        ints.add_(0.5)
    assert x.version == 0 and ints.version == 0


def test_rebinding_data_validates_the_value():
    x = tg.tensor([1.0], requires_grad=True)
    with pytest.raises(tg.DTypeError, match="requires grad"):
        x.data = np.array([1])
    with pytest.raises(tg.DTypeError):
        x.data = np.array(["a"])
    assert x.version == 0


# --- threads ------------------------------------------------------------------------------------
@pytest.fixture
def frequent_switches():
    """Make CPython switch threads every microsecond: an unlocked read-add-write loses updates."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


def run_threads(work, count=4):
    errors = []

    def guarded():
        try:
            work()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
    threads = [threading.Thread(target=guarded) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def test_concurrent_backward_passes_into_one_leaf_accumulate_exactly(frequent_switches):
    p = tg.tensor(np.zeros(3), requires_grad=True)

    def work():
        for _ in range(300):
            (p * 1.0).sum().backward()
    for _ in range(3):
        p.grad = None
        run_threads(work)
        np.testing.assert_array_equal(p.grad, np.full(3, 4 * 300.0))


def test_concurrent_recurrent_backward_equals_the_sequential_sum(frequent_switches):
    model = rnn_models.GRU(3, 5)
    inputs = [np.random.default_rng(k).standard_normal((6, 2, 3)) for k in range(4)]

    def loss(x):
        out, _ = model(x)
        return (out * out).sum()
    for x in inputs:
        loss(x).backward()
    expected = {name: p.grad.copy() for name, p in model.named_parameters()}
    model.zero_grad()
    lock, queue = threading.Lock(), list(inputs)

    def work():
        with lock:
            x = queue.pop()
        loss(x).backward()
    run_threads(work, count=len(inputs))
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad, expected[name], rtol=1e-12, atol=1e-14, err_msg=name)


def test_concurrent_writes_count_every_version(frequent_switches):
    x = tg.tensor(np.zeros(2))

    def work():
        for _ in range(500):
            x.data[0] = 1.0
    run_threads(work)
    assert x.version == 4 * 500
