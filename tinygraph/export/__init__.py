"""ONNX export: ``to_onnx(model_or_graph, path, example_inputs)`` writes a ``.onnx`` file.

    from tinygraph.export import onnx_model, to_onnx
    lstm = rnn_models.LSTM(8, 16, num_layers=2, bidirectional=True, batch_first=True, dtype=np.float32)
    to_onnx(lstm, "lstm.onnx", (np.zeros((3, 5, 8), np.float32),))       # x (B, T, 8)
    # onnxruntime: out, h_n, c_n = InferenceSession("lstm.onnx").run(None, {"input": x}), any B and T
    exported = onnx_model(lstm, (x,))   # the same in memory: exported.data, exported.summary()

No dependency: the file is written by ``tinygraph.export.proto``, a protobuf encoder of the few ONNX
messages an export needs, atomically (``tinygraph.io.write_bytes_atomic``), the same bytes for the same
model. ``onnx`` and ``onnxruntime`` (extra ``[onnx]``) are only needed to check and run the file.

What becomes what:

- A module with an exporter of its own (``register_onnx(cls, export)``) writes its own nodes:
  ``rnn_models`` registers its layers (``RNN``/``LSTM``/``GRU`` as ONNX's RNN/LSTM/GRU ops, weights
  reordered to ONNX's gate order, a user's cell as a ``Scan`` whose body is the cell's folded step
  graph, ``Recurrent.folded``) and ``SequenceModel``/``CharRNN`` (embedding as Gather, the layer, the
  head); ``tinygraph.nn.Embedding`` is a Gather.
- Anything else (a ``Module``, a function of Tensors) is traced and written op by op through the op
  table (``tinygraph.export.ops``), as is a recorded ``Graph``; a module with an exporter called
  inside a trace is still one call. An op without a mapping raises ``ExportError`` naming the op, its
  scope and why (``UNSUPPORTED``).

Inputs and outputs. ``example_inputs`` is the tuple of positional arguments (arrays, Tensors, None,
tuples of them: an LSTM's ``(h0, c0)``); each array is one graph input. A state left out is zeros
inside the graph (as in tinygraph); given, it is an input. Names come from the module's exporter
(``input``, ``h0``, ``c0`` -> ``output``, ``h_n``, ``c_n``) or are ``input``, ``input_1``... ->
``output``, ``output_1``...; ``input_names``/``output_names`` override them.

Dynamic axes. ``dynamic_axes`` maps an input name to ``{axis: name}`` (or a list of axes); the
default is the exporter's (time and batch for the recurrent models) or ``{0: "batch"}`` for every
input. Those axes are symbolic in the file (``dim_param``), so a model exported at (T=5, B=3) runs at
(T=7, B=2); every other size is fixed. The model is traced twice, the second time with the dynamic
axes longer, and the two graphs must agree node for node (``tinygraph.export.builder``): a size or a
value computed in Python at trace time (an index bound from ``x.shape``, the count ``tg.mean`` divides
by, a loop over the steps, an array made from ``x.data``) is refused with the op and its scope, never
written as a constant that is wrong at other sizes. ``dynamic_axes={}`` fixes every size (one trace);
a ``Graph`` is exported at the sizes it was recorded at.

Recurrent layers: ``recurrent="native"`` writes ONNX's RNN/LSTM/GRU; ``recurrent="scan"`` writes
every layer as a Scan of its folded step (for runtimes without those ops, or without their float64
kernels). A user's cell is always a Scan. Dropout is left out: a Module is exported in eval mode
(and put back in the mode it was in).

onnxruntime 1.32 (CPU) has float32 kernels for every op the export writes; it has no float64 kernel
for RNN, LSTM, GRU (export float64 layers with ``recurrent="scan"``, whose ops all have one), nor for
Tan, Asin, Acos, Atan (and so ``arctan2``), Sinh, Cosh, Asinh, Acosh, Atanh. The files are valid ONNX
either way (``onnx.checker``); the tests run every float64 model except those.

``opset`` is one of ``SUPPORTED_OPSETS`` (default ``ONNX_OPSET``, 17); the IR version follows it.
"""
from .builder import CONVERTERS, UNSUPPORTED, GraphBuilder, Value  # noqa: F401
from .onnx import (ONNX_OPSET, SUPPORTED_OPSETS, ExportError, OnnxModel, Signature, onnx_model,  # noqa: F401
                   register_onnx, to_onnx)

__all__ = ["to_onnx", "onnx_model", "register_onnx", "Signature", "OnnxModel", "ExportError", "ONNX_OPSET",
           "SUPPORTED_OPSETS", "CONVERTERS", "UNSUPPORTED", "GraphBuilder", "Value"]
