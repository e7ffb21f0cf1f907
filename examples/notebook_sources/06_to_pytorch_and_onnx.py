# %% [markdown]
# # 6. Moving a trained model to PyTorch and ONNX
#
# tinygraph is for understanding and verifying; when a model outgrows a laptop it should move to a
# bigger engine without being rewritten. This notebook trains a small character model, then takes it
# two ways out:
#
# - `rnn_models.to_torch(model)`: an equivalent `torch.nn.Module` with the trained weights — a
#   `torch.nn.GRU` inside — whose outputs *and gradients* equal ours;
# - `tinygraph.export.to_onnx(model, path, example_inputs)`: an ONNX file that onnxruntime runs at any
#   batch size and sequence length.
#
# Weights travel as a safetensors file that either side reads. Needs the extras `torch` and `onnx`
# (`pip install 'tinygraph[torch,onnx]'`).

# %%
import tempfile
from pathlib import Path

import numpy as np

import tinygraph as tg
from rnn_models import CharRNN, Trainer, make_optimizer, make_task, to_torch
from rnn_models.checkpoint import load_checkpoint, restore, save_checkpoint
from tinygraph.export import to_onnx

OUT = Path(tempfile.mkdtemp(prefix="tinygraph-export-"))   # files this notebook writes go here

# %% [markdown]
# ## A model to move
#
# A one-layer GRU character model, trained for a few seconds on the shipped text (notebook 5 does
# this at length). What matters here is that its weights are no longer the initial ones.

# %%
task = make_task("chars")
tg.manual_seed(0)
model = CharRNN(task.vocab, hidden_size=32, cell="gru")
trainer = Trainer(model, task, make_optimizer("adam", model.parameters(), lr=1e-2), batch_size=8,
                  seq_len=24, clip=5.0, seed=0)
trainer.train(60)
print(f"trained {trainer.step} steps: loss {trainer.history['loss'][0]:.3f} -> "
      f"{trainer.history['smoothed_loss'][-1]:.3f} (smoothed)")
model.eval()

# %% [markdown]
# ## To PyTorch
#
# `to_torch` maps our `GRU` to `torch.nn.GRU` — our parameter names and gate order are PyTorch's
# (`weight_ih_l0`, gates r, z, n), so the weights copy as they are — and wraps it with the embedding
# and the linear head in a small module with our forward's signature: `logits, h_n = net(ids)`.
#
# Equal forward numbers are the easy half. The test of a faithful port is the gradients: the same
# loss, differentiated by torch's autograd and by ours, must give the same gradient for every
# parameter.

# %%
import torch  # noqa: E402

net = to_torch(model)
print(net)

ids, targets = task.batch(np.random.default_rng(1), batch_size=3, seq_len=40)   # (T, B) ids, next chars

logits, _ = model(ids)
loss = tg.cross_entropy(logits.reshape(-1, len(task.vocab)), targets.reshape(-1))
model.zero_grad()
loss.backward()

torch_logits, _ = net(torch.from_numpy(ids))
torch_loss = torch.nn.functional.cross_entropy(torch_logits.reshape(-1, len(task.vocab)),
                                               torch.from_numpy(targets).reshape(-1))
net.zero_grad()
torch_loss.backward()

forward_gap = np.abs(torch_logits.detach().numpy() - logits.data).max()
grads = dict(net.named_parameters())
gradient_gap = max(np.abs(grads[name].grad.numpy() - p.grad).max() for name, p in model.named_parameters())
print(f"loss: ours {loss.item():.12f}, torch {torch_loss.item():.12f}")
print(f"largest forward difference: {forward_gap:.2e}")
print(f"largest gradient difference over {len(grads)} parameters: {gradient_gap:.2e}")

# %% [markdown]
# ## Weights as a file both sides read
#
# `save_checkpoint` writes safetensors when the name ends in `.safetensors` — with our own numpy code,
# no dependency — and a file holding only the model is a plain state dict, which the `safetensors`
# library loads straight into the torch module. The reverse works the same way.

# %%
import safetensors.torch  # noqa: E402

path = OUT / "char_gru.safetensors"
save_checkpoint(path, model)
print(f"saved to {path}")
fresh = to_torch(CharRNN(task.vocab, hidden_size=32, cell="gru"))        # untrained weights
fresh.load_state_dict(safetensors.torch.load_file(path))
fresh.eval()
same = torch.equal(fresh(torch.from_numpy(ids))[0], net(torch.from_numpy(ids))[0])
print(f"torch module loaded from our file gives the same logits: {same}")

back = CharRNN(task.vocab, hidden_size=32, cell="gru")
restore(load_checkpoint(path), back)
print("our loader reads it back:", all(np.array_equal(a.data, b.data)
                                       for a, b in zip(model.parameters(), back.parameters())))

# %% [markdown]
# ## To ONNX
#
# `to_onnx` traces the model on example inputs and writes ONNX's own `GRU` op (gates reordered to
# ONNX's z, r, h; `linear_before_reset=1`, which is PyTorch's GRU), a `Gather` for the embedding and
# the head op by op. It traces twice, the second time with the time and batch axes longer, to prove
# that nothing in the graph was fixed to the example's sizes: those two axes stay symbolic in the
# file. We export at (T=40, B=3) in float32 and run it in onnxruntime at (T=25, B=5).

# %%
import onnx  # noqa: E402
import onnxruntime  # noqa: E402

model32 = CharRNN(task.vocab, hidden_size=32, cell="gru")
model32.load_state_dict(model.state_dict())
model32.to(np.float32)
model32.eval()
onnx_path = OUT / "char_gru.onnx"
to_onnx(model32, onnx_path, (ids,))
print(f"wrote {onnx_path}")
checked = onnx.load(onnx_path)
onnx.checker.check_model(checked, full_check=True)
print("ONNX ops:", sorted({node.op_type for node in checked.graph.node}))
print("inputs:", [(i.name, [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim])
                  for i in checked.graph.input])

session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
other = task.batch(np.random.default_rng(3), batch_size=5, seq_len=25)[0]
onnx_logits = session.run(None, {"input": other})[0]
with tg.no_grad():
    ours = model32(other)[0].data
print(f"onnxruntime at (T, B) = {other.shape}: logits {onnx_logits.shape}, largest difference from "
      f"tinygraph: {np.abs(onnx_logits - ours).max():.2e}")

# %% [markdown]
# The same model, three engines, one set of numbers: the float64 port to PyTorch agrees to rounding
# (about 1e-15), and the float32 ONNX file to float32 rounding (about 1e-6). A user's own cell moves
# the same way: `to_torch` runs its traced step on torch functions, and `to_onnx` writes it as a
# `Scan` whose body is the cell's folded graph — the picture of notebook 2, as a loop body.
