# %% [markdown]
# # 5. A character-level language model
#
# A language model assigns a probability to the next character given the ones before it. A recurrent
# net reads the text one character at a time, carries what it has seen in its state `h_t`, and outputs
# a distribution over the vocabulary at every step: `p(c_{t+1} | c_0..c_t) = softmax(W h_t + b)`.
# Training minimises the cross-entropy of the true next character, in nats per character.
#
# This notebook trains a small LSTM on the text that ships with tinygraph for a few seconds: enough to
# watch the loss fall from "uniform guessing" and the samples turn from noise into word-like text.

# %%
import math
import tempfile
from pathlib import Path

import numpy as np
from IPython.display import SVG, display

import tinygraph as tg
import visualize
from rnn_models import CharRNN, Trainer, TruncatedBPTT, make_optimizer, make_task
from rnn_models.checkpoint import save_checkpoint

OUT = Path(tempfile.mkdtemp(prefix="tinygraph-charrnn-"))   # files this notebook writes go here

# %% [markdown]
# ## The data
#
# `make_task("chars")` holds the text, its vocabulary (every distinct character) and a held-out tail
# for evaluation. A batch is B random windows of T + 1 characters: the inputs are the first T, the
# targets the last T — each input character's target is the one after it.

# %%
task = make_task("chars")
V = len(task.vocab)
print(f"{len(task.text)} characters, vocabulary of V = {V}: {task.vocab!r}")
print(f"training {len(task.train_ids)}, held out {len(task.val_ids)}")
print("the text begins:", repr(task.text[:120]))

inputs, targets = task.batch(np.random.default_rng(0), batch_size=2, seq_len=24)   # ids, (T, B)
print("inputs: ", repr("".join(task.vocab[i] for i in inputs[:, 0])))
print("targets:", repr("".join(task.vocab[i] for i in targets[:, 0])))

# %% [markdown]
# ## The model, before training
#
# `CharRNN`: one-hot input → LSTM → linear head → logits over the V characters. An untrained model
# is close to uniform, so its loss starts near ln V — the cost of guessing among V characters — and
# its samples are noise.

# %%
tg.manual_seed(0)
model = CharRNN(task.vocab, hidden_size=48, cell="lstm")
print(model)
print(f"{sum(p.size for p in model.parameters())} parameters")
print(f"ln V = {math.log(V):.3f}")

optimizer = make_optimizer("adam", model.parameters(), lr=1e-2)
trainer = Trainer(model, task, optimizer, batch_size=16, seq_len=32, tbptt=16, clip=5.0, seed=0,
                  eval_every=50)
before = trainer.evaluate()
print(f"held-out loss before training: {before['loss']:.3f}")
print("sample before training:", repr(model.sample("The keeper ", 60, temperature=0.7, seed=0)))

# %% [markdown]
# ## Truncated BPTT
#
# Each training sequence has 32 steps, but the gradient is backpropagated through windows of 16:
# after each window the optimiser steps and the state is detached, so no gradient travels further
# than 16 steps back (notebook 3 showed how little would arrive anyway), and memory stays bounded.
# The state itself still flows forward across the cut.

# %%
for window in TruncatedBPTT(16).windows(32):
    print(window)

# %% [markdown]
# ## Training
#
# 150 steps of Adam (lr 0.01), each gradient clipped to norm 5. A few seconds.

# %%
trainer.train(150)
history = trainer.history
after = trainer.evaluate()
print(f"first training loss: {history['loss'][0]:.3f}")
print(f"last smoothed training loss: {history['smoothed_loss'][-1]:.3f}")
print(f"held-out loss after training: {after['loss']:.3f} (before: {before['loss']:.3f}), "
      f"next-character accuracy {after['accuracy']:.1%}")

# %%
display(SVG(visualize.loss_curve({"training batch": history["loss"],
                                  "smoothed": history["smoothed_loss"]},
                                 title=f"character-level LSTM: cross-entropy from ln V = {math.log(V):.2f}")))

# %% [markdown]
# The samples now have spaces, punctuation and the commonest short words ("the", "and"); longer words
# are still spelled by ear. At a lower temperature the model keeps to its likeliest characters; at a
# higher one it takes more risks.

# %%
for temperature in (0.5, 1.0):
    print(f"temperature {temperature}:", repr(model.sample("The keeper ", 100, temperature=temperature, seed=0)))

# %% [markdown]
# ## One window, unrolled and painted
#
# Four held-out characters through the trained model, one box per time step, every node coloured by
# log₁₀‖∂L/∂·‖ of that window's loss.

# %%
ids = task.val_ids[:5, None]                       # (5, 1): 4 inputs and their 4 next characters
logits, _ = model(ids[:-1])
with tg.scope("loss"):
    loss = task.loss(logits, ids[1:])
window_graph = visualize.retain_all(loss)
loss.backward()
model.zero_grad()                                  # leave the trained parameters' .grad clean
text = "".join(task.vocab[i] for i in ids[:, 0])
display(SVG(visualize.svg(window_graph, level="cell", grads=True,
                          title=f"{text[:-1]!r} -> {text[1:]!r}: loss {loss.item():.3f}")))

# %% [markdown]
# ## Save it
#
# A checkpoint is one `.npz` file without pickle, written atomically. With the model's config in it,
# `tinygraph sample --load char_rnn.npz` reads it back; here the same loader as the command:

# %%
from tinygraph_app.sample import load_char_model

path = OUT / "char_rnn.npz"
save_checkpoint(path, model, optimizer, config={"model": model.config()})
restored = load_char_model(path)
print("saved to", path)
print("the restored model samples the same text:",
      restored.sample("The keeper ", 60, temperature=0.7, seed=0) == model.sample("The keeper ", 60, temperature=0.7, seed=0))
