"""``to_onnx`` and ``onnx_model``: the export itself (the package docstring, ``tinygraph.export``,
describes what becomes what).
"""
import os
from dataclasses import dataclass

import numpy as np

from ..errors import ExportError
from ..graph import Graph
from ..io import check_writable, write_bytes_atomic
from ..nn.layers import Embedding
from ..nn.module import Module
from ..tensor import Tensor
from . import ops  # noqa: F401  (fills the op table)
from . import proto
from .builder import EXPORTERS, Export, GraphBuilder, Value, flatten


ONNX_OPSET = 17
"""The opset ``to_onnx`` writes unless told otherwise (onnxruntime 1.32 runs it)."""
# opset -> the IR version a file of that opset declares (onnx's table: opsets 17-18 came with IR 8,
# 19-20 with IR 9, 21 with IR 10); the op table is written for these (Reduce* axes: an attribute
# before 18, an input from 18 on)
IR_VERSIONS = {17: 8, 18: 8, 19: 9, 20: 9, 21: 10}
SUPPORTED_OPSETS = tuple(IR_VERSIONS)
"""The opsets the op table is written for (17 to 21); another ``opset=`` is an ``ExportError``."""
RECURRENT = ("native", "scan")
SIGNATURES = {}


@dataclass(frozen=True)
class Signature:
    """A module's default graph input names, output names and dynamic axes (by input name)."""
    inputs: tuple
    outputs: tuple
    axes: dict


@dataclass(frozen=True)
class OnnxModel:
    """An exported model: ``data``, the bytes of the ONNX file, its ``opset``, ``inputs`` and
    ``outputs`` as ``(name, dtype, dims)`` (a dim is an int, the name of a dynamic axis, or None), and
    ``op_counts`` of the model graph's nodes. onnxruntime reads the bytes as they are
    (``InferenceSession(model.data)``)."""
    data: bytes
    opset: int
    inputs: tuple
    outputs: tuple
    op_counts: dict

    def save(self, path):
        """Write the file atomically (``tinygraph.io.write_bytes_atomic``); returns ``path``."""
        write_bytes_atomic(path, self.data)
        return path

    def summary(self):
        """One line: the inputs and outputs with their dims, the size, the opset and the ops."""
        def show(entries):
            return ", ".join(f"{n} ({', '.join(str(d) for d in dims)}) {dtype}" for n, dtype, dims in entries)
        ops_text = ", ".join(f"{k} x{v}" if v > 1 else k for k, v in self.op_counts.items())
        return (f"inputs {show(self.inputs)}; outputs {show(self.outputs)}; {len(self.data)} bytes, opset "
                f"{self.opset}, nodes {ops_text}")


def register_onnx(cls, export, signature=None):
    """Export instances of ``cls`` (and its subclasses) with ``export(builder, module, *args, **kwargs)``,
    which writes the module's ONNX nodes and returns their output names in the structure the module
    returns (``GraphBuilder`` lists what it can emit). ``signature(module) -> Signature`` gives the
    default names and dynamic axes when such a module is exported itself."""
    if not isinstance(cls, type) or not callable(export):
        raise TypeError(f"register_onnx: expected a class and a function, got {cls!r} and {export!r}")
    EXPORTERS[cls] = export
    if signature is not None:
        SIGNATURES[cls] = signature


def _embedding(b, module, indices):
    """Embedding: a Gather of the weight's rows."""
    ids = indices if isinstance(indices, Value) else b.const(np.asarray(indices), "indices")
    return b.node("Gather", [b.parameter(module.weight), ids], axis=0)


register_onnx(Embedding, _embedding)


def to_onnx(model, path, example_inputs, **options):
    """Export ``model`` (see ``onnx_model``) and write the file ``path`` atomically; returns the
    ``OnnxModel``. The path is checked before any work is done."""
    try:
        check_writable(path)
    except ValueError as exc:
        raise ExportError(f"to_onnx: cannot write {os.fspath(path)!r}: {exc}") from None
    exported = onnx_model(model, example_inputs, **options)
    exported.save(path)
    return exported


def onnx_model(model, example_inputs, *, dynamic_axes=None, input_names=None, output_names=None,
               opset=ONNX_OPSET, recurrent="native", doc=""):
    """``model`` (a Module, a function of Tensors, or a ``tinygraph.Graph``) as an ``OnnxModel``, the
    bytes of its ONNX file; see the module docstring.

    Args:
        example_inputs: the positional arguments to trace with (one array may be given bare); for a
            Graph, the leaf Tensors of the graph that are its inputs (its other leaves are constants).
        dynamic_axes: ``{input name: {axis: axis name} or [axes]}``; None: the default above.
        input_names, output_names: lists of graph input/output names, in order.
        opset: one of ``SUPPORTED_OPSETS``. recurrent: "native" or "scan".
        doc: the model's doc_string.
    """
    if opset not in IR_VERSIONS:
        raise ExportError(f"to_onnx: opset must be one of {list(SUPPORTED_OPSETS)}, got {opset!r}")
    if recurrent not in RECURRENT:
        raise ExportError(f"to_onnx: recurrent must be one of {list(RECURRENT)}, got {recurrent!r}")
    if not (isinstance(model, (Module, Graph)) or callable(model)):
        raise ExportError(f"to_onnx: expected a Module, a function or a tinygraph Graph, got "
                          f"{type(model).__name__}")
    args = tuple(example_inputs) if isinstance(example_inputs, (tuple, list)) else (example_inputs,)
    export = Export(opset, recurrent)
    root = GraphBuilder(export)
    signature = _signature(model)
    flat = _input_arrays(model, args)
    arrays = [t._data if isinstance(t, Tensor) else t for t in flat]
    names = _names("input_names", input_names, signature.inputs, len(flat), "input")
    if isinstance(model, Graph):
        if dynamic_axes:
            raise ExportError("to_onnx: a Graph is exported at the sizes it was recorded at (its shapes "
                              "are fixed in it); for dynamic axes export the module or function that "
                              "computes it, which is traced at two sizes")
        dynamic_axes = {}
    axes = _dynamic_axes(dynamic_axes, signature.axes, names, arrays)
    inputs = _declare_inputs(root, export, arrays, names, axes)
    if isinstance(model, Graph):
        values = {id(t): v for t, v in zip(flat, inputs)}
        root.convert(model.nodes, values)
        results = [values[id(model.nodes[p])] for p in model.outputs]
    else:
        structure = _structure(args, iter(inputs))
        was_training = model.training if isinstance(model, Module) else None
        if was_training is not None:
            model.eval()
        try:
            results = flatten(root.call(model, *structure), Value)
        finally:
            if was_training is not None:
                model.train(was_training)
    if not results:
        raise ExportError(f"to_onnx: {type(model).__name__} returned no Tensor (tuples and lists of "
                          f"Tensors are outputs); there is nothing to export")
    out_names = _names("output_names", output_names, signature.outputs, len(results), "output")
    for name in out_names:
        export.reserve(name)
    for name, value in zip(out_names, results):
        root.output(value, name)
    unread = [name for name, v in zip(names, inputs) if v.name not in root.read]
    if unread:
        many = len(unread) > 1
        them = "them" if many else "it"
        raise ExportError(
            f"to_onnx: the input{'s' if many else ''} {', '.join(map(repr, unread))} "
            f"{'do' if many else 'does'} not reach the outputs: the trace read {them} into numpy "
            f"(integer ids given to tg.embedding as an array, a Python number) or did not use {them}, "
            f"and the export would ignore {them}; pass Tensors through ops (an Embedding module takes "
            f"ids as a Tensor) or leave the input out")
    data = proto.model(root.encode("tinygraph"), opset, IR_VERSIONS[opset], "tinygraph", _version(), doc)
    return OnnxModel(data, opset,
                     tuple((n, v.dtype.name, export.dims(v)) for n, v in zip(names, inputs)),
                     tuple((n, v.dtype.name, export.dims(v)) for n, v in zip(out_names, results)),
                     _op_counts(root))


def _version():
    from .. import __version__
    return __version__


def _op_counts(root):
    counts = {}
    for op_type in root.op_types:
        counts[op_type] = counts.get(op_type, 0) + 1
    return counts


def _signature(model):
    for cls in type(model).__mro__:
        if cls in SIGNATURES:
            return SIGNATURES[cls](model)
    return Signature((), (), {})


def _input_arrays(model, args):
    """The graph inputs: every array/Tensor in ``args`` (flattened), as arrays; for a Graph, its
    input leaves themselves."""
    if isinstance(model, Graph):
        leaves = flatten(args, Tensor)
        if len(leaves) != len(args):
            raise ExportError("to_onnx: for a Graph, example_inputs must be the graph's input leaves "
                              "(Tensors)")
        for k, t in enumerate(leaves):
            if t not in model or t.op is not None:
                raise ExportError(f"to_onnx: example_inputs[{k}] (a Tensor of shape {t.shape}) is not a "
                                  f"leaf of the graph; give the leaves the graph reads as its inputs")
        return leaves
    arrays = []

    def visit(arg, where):
        if arg is None:
            return
        if isinstance(arg, (tuple, list)):
            for k, part in enumerate(arg):
                visit(part, f"{where}[{k}]")
            return
        array = arg._data if isinstance(arg, Tensor) else arg
        if not isinstance(array, np.ndarray) or array.dtype.kind not in "fiub":
            raise ExportError(f"to_onnx: example_inputs{where} is {type(arg).__name__}; give arrays or "
                              f"Tensors of numbers (tuples of them for a state), or None")
        proto.data_type(array.dtype)
        arrays.append(array)
    for k, arg in enumerate(args):
        visit(arg, f"[{k}]")
    if not arrays:
        raise ExportError("to_onnx: example_inputs hold no array; give at least one input")
    return arrays


def _structure(args, values):
    """``args`` with each array/Tensor replaced by the next input Value."""
    if args is None:
        return None
    if isinstance(args, (tuple, list)):
        return type(args)(_structure(a, values) for a in args)
    return next(values)


def _names(what, given, defaults, count, stem):
    if given is not None:
        given = list(given)
        if len(given) != count or not all(isinstance(n, str) and n for n in given):
            raise ExportError(f"to_onnx: {what} must be {count} non-empty strings, got {given!r}")
        return given
    names = list(defaults[:count])
    names += [stem if not names and k == 0 else f"{stem}_{k}" for k in range(len(names), count)]
    return names


def _dynamic_axes(given, defaults, names, arrays):
    """``{input name: {axis: axis name}}`` checked against the inputs' ranks."""
    if given is None:
        given = {n: defaults.get(n, {0: "batch"} if a.ndim else {}) for n, a in zip(names, arrays)}
    elif not isinstance(given, dict):
        raise ExportError(f"to_onnx: dynamic_axes must be a dict {{input name: {{axis: name}}}}, got "
                          f"{type(given).__name__}")
    unknown = [n for n in given if n not in names]
    if unknown:
        raise ExportError(f"to_onnx: dynamic_axes names {unknown}, which are not inputs (the inputs are "
                          f"{names})")
    axes = {}
    for name, array in zip(names, arrays):
        spec = given.get(name, {})
        if isinstance(spec, (list, tuple)):
            spec = {a: f"{name}_{a % max(array.ndim, 1)}" for a in spec}
        if not isinstance(spec, dict):
            raise ExportError(f"to_onnx: dynamic_axes[{name!r}] must be a dict {{axis: name}} or a list of "
                              f"axes, got {spec!r}")
        checked = {}
        for axis, label in spec.items():
            if isinstance(axis, bool) or not isinstance(axis, int) or not -array.ndim <= axis < array.ndim:
                raise ExportError(f"to_onnx: dynamic_axes[{name!r}] names axis {axis!r}, but {name!r} has "
                                  f"shape {array.shape}")
            if not isinstance(label, str) or not label:
                raise ExportError(f"to_onnx: dynamic_axes[{name!r}][{axis}] must be a non-empty name, got "
                                  f"{label!r}")
            checked[axis % array.ndim] = label
        axes[name] = checked
    return axes


def _declare_inputs(root, export, arrays, names, axes):
    """Graph inputs with their dims; each dynamic axis gets a probe size (``builder``): its example
    size plus one more than the axes declared before it, so two axes never share both sizes."""
    sizes = {}
    for name, array in zip(names, arrays):
        for axis, label in axes[name].items():
            n = array.shape[axis]
            if n == 0:
                raise ExportError(f"to_onnx: the example input {name!r} has size 0 on its dynamic axis "
                                  f"{axis} ({label!r}); give an example with at least one element there")
            if label in sizes and sizes[label][0] != n:
                raise ExportError(f"to_onnx: the dynamic axis {label!r} has size {sizes[label][0]} in one "
                                  f"input and {n} in {name!r} (axis {axis}); one axis name, one size")
            if label not in sizes:
                sizes[label] = (n, n + 1 + len(sizes))
    export.axis_names = {pair: label for label, pair in sizes.items()}
    inputs = []
    for name, array in zip(names, arrays):
        export.reserve(name)
        probe = array
        for axis, label in axes[name].items():
            probe = np.take(probe, np.arange(sizes[label][1]) % array.shape[axis], axis=axis)
        dims = [axes[name].get(a, n) for a, n in enumerate(array.shape)]
        value = Value(name, array, probe)
        root.inputs.append(proto.value_info(name, array.dtype, dims))
        inputs.append(value)
    return inputs

