"""Graph: a real object — ordered nodes, (src, dst, argnum) edges, leaves, parameters, scopes."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygraph as tg


def two_layer_program():
    """A small scoped program; returns (loss, {label: tensor})."""
    x = tg.tensor(np.arange(6.0).reshape(2, 3), name="x")
    w1 = tg.tensor(np.full((3, 4), 0.1), requires_grad=True, name="w1")
    w2 = tg.tensor(np.full((4, 1), -0.2), requires_grad=True, name="w2")
    with tg.scope("mlp"):
        with tg.scope("layer1"):
            h = tg.tanh(x @ w1)
        with tg.scope("layer2"):
            out = h @ w2
    loss = (out * out).mean()
    return loss, dict(x=x, w1=w1, w2=w2, h=h, out=out)


def test_nodes_are_in_topological_order_and_edges_match_inputs():
    loss, _ = two_layer_program()
    graph = tg.Graph.of(loss)
    position = {id(n): i for i, n in enumerate(graph.nodes)}
    for dst, node in enumerate(graph.nodes):
        for src in node.inputs:
            assert position[id(src)] < dst
    expected = [(position[id(src)], dst, argnum)
                for dst, node in enumerate(graph.nodes) for argnum, src in enumerate(node.inputs)]
    assert sorted(graph.edges) == sorted(expected)
    assert graph.nodes[-1] is loss and graph.outputs == [len(graph) - 1]


def test_the_same_program_gives_the_same_graph():
    first, second = tg.Graph.of(two_layer_program()[0]), tg.Graph.of(two_layer_program()[0])
    describe = lambda g: [(n.op.name if n.op else None, n.shape, n.name, n.scope) for n in g]  # noqa: E731
    assert describe(first) == describe(second)
    assert first.edges == second.edges


def test_a_tensor_used_twice_gives_two_edges_with_argnums_0_and_1():
    a = tg.tensor(2.0, requires_grad=True)
    graph = (a * a).graph()
    assert len(graph) == 2
    assert sorted(graph.edges) == [(0, 1, 0), (0, 1, 1)]


def test_leaves_parameters_and_counts():
    loss, t = two_layer_program()
    graph = tg.Graph.of(loss)
    leaf_names = {n.name for n in graph.leaves}
    assert {"x", "w1", "w2"} <= leaf_names
    assert [p.name for p in graph.parameters] == ["w1", "w2"]
    assert graph.op_counts() == {"matmul": 2, "tanh": 1, "mul": 2, "sum": 1}
    assert len(graph) == len(graph.leaves) + len(graph.ops)
    assert graph.loop_edges == []
    assert t["h"] in graph and tg.tensor(1.0) not in graph
    assert graph.nodes[graph.index(t["h"])] is t["h"]
    with pytest.raises(KeyError, match="not a node"):
        graph.index(tg.tensor(1.0))


def test_memory_counts_each_buffer_once_and_views_towards_their_owner():
    x = tg.tensor(np.zeros((4, 8)), requires_grad=True)
    rows = x.reshape(8, 4)[:2]                  # views of x: no memory of their own
    y = tg.tanh(rows) * 2.0                     # two new (2, 4) arrays, plus the 0-d constant 2.0
    stacked = tg.stack([y[0], y[1]])            # slices are views; stack copies
    graph = tg.Graph.of(stacked.sum())
    usage = graph.memory()
    assert usage["leaf"] == x.data.nbytes + np.asarray(2.0).nbytes
    assert "reshape" not in usage and "getitem" not in usage
    assert usage["tanh"] == usage["mul"] == usage["stack"] == 2 * 4 * 8
    assert usage["sum"] == 8
    assert sum(usage.values()) == 32 * 8 + 8 + 3 * 64 + 8


def test_nodes_record_op_inputs_shape_dtype_name_and_scope():
    loss, t = two_layer_program()
    h = t["h"]
    assert h.op.name == "tanh" and h.scope == "mlp/layer1" and h.shape == (2, 4) and h.dtype == np.float64
    product = h.inputs[0]
    assert product.op.name == "matmul" and product.inputs == (t["x"], t["w1"])
    total = loss.inputs[0]  # mean = sum * (1 / count)
    assert total.op.name == "sum" and total.op.attrs() == {"axis": None, "keepdims": False}


def test_scope_lookup_with_nested_scopes():
    loss, t = two_layer_program()
    graph = tg.Graph.of(loss)
    assert graph.scopes() == ["mlp/layer1", "mlp/layer2"]
    assert graph.scope("mlp/layer2") == [t["out"]]
    assert set(map(id, graph.scope("mlp"))) == set(map(id, graph.scope("mlp/layer1") + graph.scope("mlp/layer2")))
    assert graph.scope("mlp/layer") == []  # a path prefix, not a string prefix


def test_scope_names_are_validated():
    for bad in ("", "a/b"):
        with pytest.raises(ValueError, match="scope"):
            tg.scope(bad)


def test_graph_of_several_outputs_shares_common_nodes():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    shared = tg.exp(x)
    a, b = shared.sum(), (shared * 2.0).sum()
    graph = tg.Graph.of(a, b)
    assert [graph.nodes[i] for i in graph.outputs] == [a, b]
    assert sum(n is shared for n in graph.nodes) == 1
    assert graph.op_counts() == {"exp": 1, "sum": 2, "mul": 1}


def test_loop_edges_are_stored_as_positions():
    h0 = tg.tensor([0.0], name="h0")
    h1 = tg.tanh(h0 + 1.0)
    graph = tg.Graph.of(h1, loop_edges=[(h1, h0)])
    assert graph.loop_edges == [(graph.index(h1), graph.index(h0))]


def test_graph_of_a_deep_chain_needs_no_recursion():
    x, one = tg.tensor(1.0, requires_grad=True), tg.tensor(1.0)
    y = x
    for _ in range(20_000):
        y = y * one
    graph = tg.Graph.of(y)
    assert len(graph) == 20_002 and graph.nodes[:2] == [x, one]


def test_graph_of_a_freed_graph_raises_a_clear_error():
    x = tg.tensor([1.0], requires_grad=True)
    loss = (tg.exp(x) * 2.0).sum()
    before = tg.Graph.of(loss)  # built before backward: stays usable
    loss.backward()
    assert len(before) == 5 and len(before.edges) == 4
    with pytest.raises(tg.GraphError, match="freed by an earlier backward"):
        tg.Graph.of(loss)


UNARY = {"tanh": tg.tanh, "exp_neg": lambda a: tg.exp(-a), "sum": tg.sum}
BINARY = {"add": lambda a, b: a + b, "mul": lambda a, b: a * b, "sub": lambda a, b: a - b}
steps = st.lists(st.tuples(st.sampled_from(sorted(UNARY) + sorted(BINARY)), st.integers(0, 99), st.integers(0, 99)),
                 min_size=1, max_size=25)


def build(program):
    """Run a random straight-line program over a pool of scalars; returns every value made."""
    pool = [tg.tensor(0.5, requires_grad=True, name="p"), tg.tensor(-0.25, name="c")]
    for name, i, j in program:
        a, b = pool[i % len(pool)], pool[j % len(pool)]
        pool.append(UNARY[name](a) if name in UNARY else BINARY[name](a, b))
    return pool


@given(program=steps)
def test_random_programs_give_ordered_deterministic_graphs(program):
    graph = tg.Graph.of(*build(program)[2:])
    position = {id(n): k for k, n in enumerate(graph.nodes)}
    assert all(src < dst for src, dst, _ in graph.edges)
    assert len(graph.edges) == sum(len(n.inputs) for n in graph.nodes)
    assert all(position[id(n.inputs[arg])] == src for src, dst, arg in graph.edges for n in [graph.nodes[dst]])
    again = tg.Graph.of(*build(program)[2:])
    assert [n.op.name if n.op else n.name for n in again] == [n.op.name if n.op else n.name for n in graph]
    assert again.edges == graph.edges
