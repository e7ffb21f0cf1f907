"""Output heads (many-to-many, many-to-one), CharRNN (encode/decode/forward/sample), model configs."""
import json

import numpy as np
import pytest

import tinygraph as tg
from rnn_models.models import CharRNN, SequenceModel, build_model

CELLS = ("rnn", "lstm", "gru")


def model(cell="lstm", **kwargs):
    tg.manual_seed(0)
    options = dict(input_size=3, hidden_size=4, output_size=2)
    options.update(kwargs)
    return SequenceModel(cell, **options)


def data(T=5, B=2, I=3, seed=0):
    return np.random.default_rng(seed).standard_normal((T, B, I))


def last_h(state):
    return (state[0] if isinstance(state, tuple) else state).data


@pytest.mark.parametrize("cell", CELLS)
def test_many_to_many_gives_a_prediction_per_step(cell):
    m = model(cell)
    x = data()
    y, state = m(x)
    assert y.shape == (5, 2, 2)
    out, _ = m.rnn(x)
    np.testing.assert_allclose(y.data, out.data @ m.head.weight.data.T + m.head.bias.data, rtol=1e-12)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("layers,bidirectional", [(1, False), (2, False), (2, True)])
def test_many_to_one_reads_the_last_layers_final_state(cell, layers, bidirectional):
    m = model(cell, head="many_to_one", num_layers=layers, bidirectional=bidirectional)
    x = data()
    y, state = m(x)
    assert y.shape == (2, 2)
    h_n = last_h(state)
    D = 2 if bidirectional else 1
    features = np.concatenate(list(h_n[-D:]), axis=-1)
    np.testing.assert_allclose(y.data, features @ m.head.weight.data.T + m.head.bias.data, rtol=1e-12)
    if not bidirectional:  # = the output at the last step for a unidirectional net
        out, _ = m.rnn(x)
        np.testing.assert_allclose(features, out.data[-1], rtol=1e-12)


def test_many_to_one_with_lengths_uses_each_sequences_last_valid_step():
    m = model("gru", head="many_to_one")
    x = data(T=6, B=3)
    lengths = np.array([6, 2, 4])
    y, _ = m(x, lengths=lengths)
    for b, n in enumerate(lengths):
        alone, _ = m(x[:n, b:b + 1])
        np.testing.assert_allclose(y.data[b], alone.data[0], rtol=1e-10, atol=1e-12)


def test_the_textbook_equations():
    """h_t = tanh(W_hx x_t + W_hh h_{t-1} + b_h), y_t = W_yh h_t + b_y, softmax in the loss."""
    m = model("rnn")
    x = data()
    y, _ = m(x)
    p = {k: v.data for k, v in m.named_parameters()}
    h = np.zeros((2, 4))
    for t in range(5):
        h = np.tanh(x[t] @ p["rnn.weight_ih_l0"].T + p["rnn.bias_ih_l0"] + h @ p["rnn.weight_hh_l0"].T
                    + p["rnn.bias_hh_l0"])
        np.testing.assert_allclose(y.data[t], h @ p["head.weight"].T + p["head.bias"], rtol=1e-12)


def test_sequence_model_gradients_pass_gradcheck():
    """The head and the many-to-one selection are differentiated correctly (numerical check)."""
    m = model("lstm", head="many_to_one", hidden_size=3)
    x, target = data(T=3), np.ones((2, 2))
    names = [n for n, _ in m.named_parameters()]

    def owner_and_attr(name):
        *path, attr = name.split(".")
        owner = m
        for part in path:
            owner = getattr(owner, part)
        return owner, attr

    def loss(*tensors):  # run the model with the checked tensors in place of its parameters
        originals = [getattr(*owner_and_attr(n)) for n in names]
        try:
            for n, t in zip(names, tensors):
                object.__setattr__(*owner_and_attr(n), t)
            return tg.mse_loss(m(x)[0], target)
        finally:
            for n, p in zip(names, originals):
                object.__setattr__(*owner_and_attr(n), p)

    inputs = [tg.tensor(p.data.copy(), requires_grad=True) for p in m.parameters()]
    assert tg.gradcheck(loss, inputs)


def test_embedding_inputs_one_hot_or_learned():
    one_hot = model("gru", input_size=None, embedding=5)
    assert "embedding.weight" not in dict(one_hot.named_parameters())
    assert one_hot.rnn.weight_ih_l0.shape == (3 * 4, 5)
    ids = np.array([[0, 4], [2, 1], [3, 3]])
    y, _ = one_hot(ids)
    assert y.shape == (3, 2, 2)
    y_ref = one_hot.head(one_hot.rnn(np.eye(5)[ids])[0])  # one-hot by hand, same layers
    np.testing.assert_allclose(y.data, y_ref.data, rtol=1e-12)
    learned = model("gru", input_size=7, embedding=5)
    assert learned.embedding.weight.shape == (5, 7)
    with pytest.raises(tg.ShapeError, match=r"integer ids of shape \(T, B\)"):
        learned(np.zeros((3, 2)))


def test_bad_configuration_is_named():
    with pytest.raises(ValueError, match=r"unknown kind 'lstn'.*rnn, lstm, gru"):
        SequenceModel("lstn", 3, 4, 2)
    with pytest.raises(ValueError, match="unknown head 'one_to_many'"):
        SequenceModel("rnn", 3, 4, 2, head="one_to_many")
    for name in ("input_size", "hidden_size", "output_size", "num_layers"):
        args = dict(input_size=3, hidden_size=4, output_size=2, num_layers=1)
        args[name] = 0
        with pytest.raises(ValueError, match=f"{name} must be a positive integer, got 0"):
            SequenceModel("rnn", **args)
    with pytest.raises(tg.ShapeError, match=r"\(T, B, input_size\) with input_size=3, got \(5, 2, 4\)"):
        model("rnn")(np.zeros((5, 2, 4)))


@pytest.mark.parametrize("factory", [
    lambda: model("gru", num_layers=2, head="many_to_one", bidirectional=True),
    lambda: model("rnn", input_size=None, embedding=6, nonlinearity="relu"),
    lambda: CharRNN("abc\n", 5, cell="gru", num_layers=2, embedding_dim=3),
])
def test_config_is_json_and_rebuilds_the_same_architecture(factory):
    original = factory()
    config = json.loads(json.dumps(original.config()))
    rebuilt = build_model(config)
    assert type(rebuilt) is type(original)
    assert {k: v.shape for k, v in rebuilt.named_parameters()} == \
           {k: v.shape for k, v in original.named_parameters()}
    rebuilt.load_state_dict(original.state_dict())
    ids = np.array([[0, 1], [2, 3]]) if original.vocab_size else data()
    np.testing.assert_array_equal(rebuilt(ids)[0].data, original(ids)[0].data)


def test_build_model_rejects_unknown_configs():
    with pytest.raises(ValueError, match="unknown model kind 'Transformer'"):
        build_model({"kind": "Transformer"})
    with pytest.raises(ValueError, match="does not fit CharRNN"):
        build_model({"kind": "CharRNN", "vocab": "ab", "hidden_size": 3, "heads": 2})


# --- CharRNN --------------------------------------------------------------------------------------------
VOCAB = "\n abcdefgh."


def char_rnn(cell="lstm", **kwargs):
    tg.manual_seed(1)
    return CharRNN(VOCAB, 8, cell=cell, **kwargs)


def test_encode_decode_round_trip_and_errors():
    m = char_rnn()
    ids = m.encode("bad cafe.\n")
    assert ids.dtype == np.int64 and m.decode(ids) == "bad cafe.\n"
    with pytest.raises(ValueError, match=r"characters 'xz' \(\['x', 'z'\]\) are not in the vocabulary"):
        m.encode("fax a zebxa")
    with pytest.raises(ValueError, match="repeats the characters"):
        CharRNN("abca", 4)
    with pytest.raises(ValueError, match="non-empty string"):
        CharRNN("", 4)


@pytest.mark.parametrize("cell", CELLS)
def test_char_rnn_forward_shapes_and_state_continuation(cell):
    m = char_rnn(cell)
    ids = np.random.default_rng(0).integers(0, len(VOCAB), size=(6, 3))
    logits, state = m(ids)
    assert logits.shape == (6, 3, len(VOCAB))
    first, mid = m(ids[:4])
    rest, _ = m(ids[4:], mid)  # carrying the state = one long sequence
    np.testing.assert_allclose(np.concatenate([first.data, rest.data]), logits.data, rtol=1e-12)


def test_char_rnn_matches_torch():
    """one-hot -> LSTM -> Linear -> cross-entropy: logits and every gradient equal PyTorch's."""
    torch = pytest.importorskip("torch", reason="PyTorch is needed for the cross-check against torch")
    m = char_rnn("lstm")
    ids = np.random.default_rng(0).integers(0, len(VOCAB), size=(5, 2))
    targets = np.random.default_rng(1).integers(0, len(VOCAB), size=(5, 2))
    logits, _ = m(ids)
    loss = tg.cross_entropy(logits.reshape(-1, len(VOCAB)), targets.reshape(-1))
    loss.backward()

    lstm = torch.nn.LSTM(len(VOCAB), 8).double()
    head = torch.nn.Linear(8, len(VOCAB)).double()
    params = dict(m.named_parameters())
    with torch.no_grad():
        for name, p in lstm.named_parameters():
            p.copy_(torch.from_numpy(params[f"rnn.{name}"].data))
        head.weight.copy_(torch.from_numpy(params["head.weight"].data))
        head.bias.copy_(torch.from_numpy(params["head.bias"].data))
    x = torch.nn.functional.one_hot(torch.from_numpy(ids), len(VOCAB)).double()
    out, _ = lstm(x)
    t_logits = head(out)
    t_loss = torch.nn.functional.cross_entropy(t_logits.reshape(-1, len(VOCAB)), torch.from_numpy(targets).reshape(-1))
    t_loss.backward()
    np.testing.assert_allclose(logits.data, t_logits.detach().numpy(), rtol=0, atol=1e-12)
    assert loss.item() == pytest.approx(t_loss.item(), abs=1e-12)
    torch_params = {f"rnn.{k}": v for k, v in lstm.named_parameters()}
    torch_params.update({"head.weight": head.weight, "head.bias": head.bias})
    for name, p in params.items():
        np.testing.assert_allclose(p.grad, torch_params[name].grad.numpy(), rtol=0, atol=1e-10, err_msg=name)


def test_sample_is_deterministic_for_a_seed():
    m = char_rnn("gru")
    a = m.sample("ab", 40, seed=7)
    assert a == m.sample("ab", 40, seed=7)
    assert a != m.sample("ab", 40, seed=8)
    assert len(a) == 40 and set(a) <= set(VOCAB)
    assert m.sample("ab", 0, seed=7) == ""


def test_sample_temperature_near_zero_is_greedy():
    m = char_rnn("rnn")
    text = m.sample("a", 10, temperature=1e-6, seed=0)
    ids, state, greedy = m.encode("a")[:, None], None, []
    for _ in range(10):
        logits, state = m(ids, state)
        ids = np.array([[int(logits.data[-1, 0].argmax())]])
        greedy.append(ids[0, 0])
    assert text == m.decode(greedy)


def test_sample_leaves_the_model_untouched():
    m = char_rnn("lstm", num_layers=2, dropout=0.5)
    before = {k: v.copy() for k, v in m.state_dict().items()}
    m.train()
    m.sample("ab", 5, seed=0)
    assert m.training
    assert all(p.grad is None for p in m.parameters())
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
    # eval mode inside sample: dropout off, so the result does not depend on the global generator
    tg.manual_seed(123)
    a = m.sample("ab", 20, seed=0)
    tg.manual_seed(456)
    assert m.sample("ab", 20, seed=0) == a


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), "hot"])
def test_sample_rejects_bad_temperature(bad):
    with pytest.raises(ValueError, match="temperature must be a positive number"):
        char_rnn().sample("a", 3, temperature=bad)


def test_sample_rejects_bad_prompt_and_length():
    m = char_rnn()
    with pytest.raises(ValueError, match=r"characters 'QZ' .* not in the vocabulary"):
        m.sample("aQZ", 3)
    with pytest.raises(ValueError, match="prompt must be a non-empty string"):
        m.sample("", 3)
    with pytest.raises(ValueError, match="n must be a non-negative integer, got -2"):
        m.sample("a", -2)
