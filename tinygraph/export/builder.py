"""Building ONNX graphs from tinygraph: nodes, initializers and value infos with unique names, and
tinygraph's own value of every ONNX value at two sizes of the dynamic axes.

Dynamic axes without a symbolic engine: trace twice and compare. The export traces the model once on
the example inputs and once on *probe* inputs, the examples with every dynamic axis a little longer
(made by the export), and walks the two graphs node for node. Every ``Value`` carries both results:
``example`` and ``probe``, so an axis of any value is dynamic exactly when its two sizes differ. The
graphs must agree: the same ops on the same inputs, the same attributes and the same constants. What
differs was computed in Python from a size or a value at trace time — a slice bound ``x.shape[0] //
2``, the count ``tg.mean`` divides by, the number of unrolled steps — and would be a wrong constant
in the file, so it is refused, naming the op and its scope. The exceptions are the attributes a rule
writes from the two sizes instead (``SIZED_ATTRIBUTES``: the target shapes of ``reshape`` and
``broadcast_to``, whose dimensions that follow a dynamic axis become ONNX's "copy" (0) or "infer"
(-1)). With no dynamic axis the model is traced once and both values are the same.

A module with an exporter of its own (``tinygraph.export.register_onnx``) is not traced: the trace
records each of its calls as one node (``ModuleCall``, through the ``tinygraph.tracing.CALLS`` hook
in ``Module.__call__``), its exporter writes the ONNX nodes, and the module itself computes the
example and probe values.
"""
import contextlib
import threading

import numpy as np

from .. import release
from ..errors import ExportError
from ..graph import toposort
from ..modes import enable_grad, no_grad
from ..ops.base import Op, apply
from ..tensor import Tensor
from ..tracing import CALLS
from . import proto

INT64_MAX, INT64_MIN = 2**63 - 1, -2**63
EXPORTERS = {}   # class -> exporter(builder, module, *args, **kwargs) -> ONNX names, in the call's structure
CONVERTERS = {}  # tinygraph op name -> rule(builder, op, inputs, out) -> ONNX name of the output
"""The op table: tinygraph op name -> ``rule(builder, op, inputs, out)`` emitting the op's ONNX nodes
and returning the ONNX name of its output (filled by ``tinygraph.export.ops``)."""
SIZED_ATTRIBUTES = {}  # op name -> attributes its rule reads from the Values' sizes, not the op
UNSUPPORTED = {}  # tinygraph op name -> why it has no ONNX mapping
"""tinygraph op name -> why it has no ONNX mapping (the error an export of it raises says so)."""


class Value:
    """One tensor of an ONNX graph: ``name``, and tinygraph's value of it at the example sizes
    (``example``, an ndarray, or a ``Released`` placeholder with its shape and dtype) and at the probe
    sizes (``probe``)."""
    __slots__ = ("name", "example", "probe")

    def __init__(self, name, example, probe):
        self.name, self.example, self.probe = name, example, probe

    shape = property(lambda self: self.example.shape, doc="The shape at the example sizes.")
    dtype = property(lambda self: self.example.dtype, doc="The numpy dtype of the value.")
    ndim = property(lambda self: len(self.example.shape), doc="The number of axes.")

    def is_dynamic(self, axis):
        """True when ``axis`` follows a dynamic axis of the inputs (its size changes with them)."""
        return self.example.shape[axis] != self.probe.shape[axis]

    @property
    def dynamic(self):
        """The axes that follow a dynamic axis of the inputs."""
        return tuple(a for a in range(self.ndim) if self.is_dynamic(a))

    def __repr__(self):
        return f"Value({self.name!r}, {self.example.dtype} {self.example.shape}, probe {self.probe.shape})"


class Export:
    """What every graph of one export shares: the opset, the recurrent lowering, the names taken
    (ONNX names are unique across a model and its subgraphs) and the names of the dynamic axes."""

    def __init__(self, opset, recurrent):
        self.opset, self.recurrent = opset, recurrent
        self.axis_names = {}   # (example size, probe size) -> the dynamic axis' name
        self._taken, self._next = set(), {}

    def reserve(self, name):
        """Claim ``name`` for a graph input or output; an ``ExportError`` when it is taken already."""
        if name in self._taken:
            raise ExportError(f"to_onnx: the name {name!r} is given to two inputs or outputs; give "
                              f"each a name of its own")
        self._taken.add(name)

    def fresh(self, hint):
        """``hint``, or ``hint_1``, ``hint_2``... : the first not yet taken (deterministic)."""
        name = hint
        while name in self._taken:
            self._next[hint] = k = self._next.get(hint, 0) + 1
            name = f"{hint}_{k}"
        self._taken.add(name)
        return name

    @property
    def fixed(self):
        """True when no axis is dynamic: the probe sizes are the example sizes."""
        return not self.axis_names

    def axis_list(self):
        """The dynamic axes' names as text, ``('T', 'B')``, for error messages."""
        return "(" + ", ".join(repr(name) for name in self.axis_names.values()) + ")"

    def dims(self, value):
        """The value's ONNX dims: an int per fixed axis, the axis' name (or None) per dynamic one."""
        return tuple(n if n == m else self.axis_names.get((n, m))
                     for n, m in zip(value.example.shape, value.probe.shape))

    def axis_label(self, value, axis):
        """How errors name an axis of ``value``: ``axis 1 ('batch')``."""
        name = self.dims(value)[axis]
        return f"axis {axis}" + (f" ({name!r})" if isinstance(name, str) else "")


class GraphBuilder:
    """One ONNX graph under construction (the model's, or a Scan body: ``subgraph()``).

    Rules and exporters emit with ``node``, ``const``/``ints``/``scalar`` (initializers, held by the
    model's graph, which subgraphs read from the outer scope), ``cast`` and ``dim``; they compute
    tinygraph values with ``call`` (a module or function) and ``value`` (a name with its two arrays).
    """

    def __init__(self, export, parent=None):
        self.export, self.parent = export, parent
        self.root = self if parent is None else parent.root
        self.nodes, self.inputs, self.outputs, self.initializers = [], [], [], []
        self.op_types = []      # of the nodes, in order
        self.read = set()       # names this graph's nodes and outputs read
        self.scope = ""         # the tinygraph scope the nodes being emitted come from
        self._made = set()      # names this graph's nodes compute
        self._output_names = set()
        self._constants = {}    # (root) key -> (the object the key came from, Value)
        self._calls = {}        # id(Call) -> ONNX names of its outputs

    opset = property(lambda self: self.export.opset, doc="The opset being written (an int, 17 to 21).")
    recurrent = property(lambda self: self.export.recurrent,
                         doc='How recurrent layers are written: "native" (RNN/LSTM/GRU) or "scan".')

    # --- emitting ------------------------------------------------------------------------------
    def node(self, op_type, inputs, outputs=1, **attributes):
        """Append an ONNX node; ``inputs`` are Values, names or None (an optional input left out).
        Returns the output's name, or the list of ``outputs`` names."""
        names = [_name(v) for v in inputs]
        while names and not names[-1]:  # trailing optional inputs are simply not written
            names.pop()
        self.read.update(n for n in names if n)
        outs = [self.export.fresh(op_type.lower()) for _ in range(outputs)]
        self._made.update(outs)
        label = self.export.fresh(f"{self.scope}/{op_type}" if self.scope else op_type)
        self.nodes.append(proto.node(op_type, names, outs, label, list(attributes.items())))
        self.op_types.append(op_type)
        return outs[0] if outputs == 1 else outs

    def const(self, array, hint="const"):
        """A constant (an initializer of the model's graph) as a Value. Small constants of equal
        dtype, shape and bytes are written once."""
        array = np.asarray(array)
        small = array.size <= 16
        key = ("bytes", array.dtype.str, array.shape, array.tobytes()) if small else ("id", id(array))
        return self.root._constant(key, array, array, hint)

    def parameter(self, tensor, hint=None):
        """The initializer holding a leaf Tensor's value (one per Tensor, however often it is read)."""
        hint = hint or tensor.name or "const"
        return self.root._constant(("tensor", id(tensor)), tensor, tensor._data, hint)

    def _constant(self, key, owner, array, hint):
        held = self._constants.get(key)
        if held is None:
            name = self.export.fresh(hint)
            self.initializers.append(proto.tensor(name, array))
            held = self._constants[key] = (owner, Value(name, array, array))  # owner keeps id() valid
        return held[1]

    def ints(self, values):
        """The name of a 1-D int64 constant."""
        return self.const(np.asarray(values, dtype=np.int64).reshape(-1), "ints").name

    def scalar(self, x, dtype):
        """The name of a 0-d constant of ``dtype``."""
        return self.const(np.asarray(x, dtype=dtype), "scalar").name

    def cast(self, value, dtype):
        """``value``'s name, through a ``Cast`` to ``dtype`` when it has another dtype."""
        dtype = np.dtype(dtype)
        if value.dtype == dtype:
            return value.name
        return self.node("Cast", [value], to=proto.data_type(dtype))

    def dim(self, value, axis):
        """The name of a 1-D int64 tensor [n], n the size of ``axis`` of ``value``: a constant for a
        fixed axis, ``Shape`` for a dynamic one."""
        axis %= value.ndim
        if not value.is_dynamic(axis):
            return self.ints([value.shape[axis]])
        return self.node("Shape", [value], start=axis, end=axis + 1)

    def value(self, name, example, probe):
        """A ``Value`` named ``name`` with its arrays at the example sizes and at the probe sizes."""
        return Value(name, np.asarray(example), np.asarray(probe))

    def require_fixed(self, value, what, axes=None):
        """Raise ``ExportError`` when ``value`` has a dynamic axis among ``axes`` (default all) that
        the rule ``what`` needs fixed."""
        dynamic = [a for a in value.dynamic if axes is None or a in axes]
        if dynamic:
            labels = ", ".join(self.export.axis_label(value, a) for a in dynamic)
            raise ExportError(f"{what} needs fixed sizes, but {labels} of its input {value.shape} "
                              f"{'is' if len(dynamic) == 1 else 'are'} dynamic; pass dynamic_axes "
                              f"without {'it' if len(dynamic) == 1 else 'them'} (dynamic_axes={{}} "
                              f"fixes every size) to export it")

    # --- the graph's inputs and outputs ---------------------------------------------------------
    def input(self, example, probe, hint, dims=None):
        """A graph input as a Value; ``dims`` default to the dims its two sizes give."""
        value = Value(self.export.fresh(hint), example, probe)
        self.inputs.append(proto.value_info(value.name, value.dtype,
                                            self.export.dims(value) if dims is None else dims))
        return value

    def output(self, value, name=None):
        """Make ``value`` a graph output, named ``name`` (reserved beforehand) or its own name. An
        ``Identity`` copies it under the new name, or when this graph's nodes did not compute it (an
        input, an initializer) or it is an output already."""
        if name is None and (value.name not in self._made or value.name in self._output_names):
            name = self.export.fresh(value.name)
        self.read.add(value.name)
        if name is not None:
            self.nodes.append(proto.node("Identity", [value.name], [name],
                                         self.export.fresh(f"{name}/Identity")))
            self.op_types.append("Identity")
            value = Value(name, value.example, value.probe)
        self._output_names.add(value.name)
        self.outputs.append(proto.value_info(value.name, value.dtype, self.export.dims(value)))
        return value.name

    def subgraph(self):
        """A builder for a graph inside this one (a Scan body): its own nodes, inputs and outputs,
        the model's initializers and names."""
        return GraphBuilder(self.export, self)

    def encode(self, name):
        """The GraphProto bytes of everything built so far, as the graph ``name``."""
        return proto.graph(name, self.nodes, self.initializers, self.inputs, self.outputs)

    # --- tinygraph values -------------------------------------------------------------------------
    def call(self, fn, *args, **kwargs):
        """``fn(*args, **kwargs)`` in the graph, its Tensors as Values, in the structure ``fn``
        returns: a module with an exporter of its own is run at both sizes and its exporter writes
        its nodes; anything else is traced and converted op by op. ``args`` hold Values (the
        tinygraph inputs), None and constants."""
        exporter = exporter_of(fn)
        if exporter is None:
            return self.trace(fn, args, kwargs)
        example, probe = (run(fn, args, kwargs, which) for which in ("example", "probe"))
        values = flatten(example, Tensor)
        names = self._export_module(exporter, fn, args, kwargs, len(values))
        results = iter(Value(n, e._data, p._data) for n, e, p in zip(names, values, flatten(probe, Tensor)))
        return rebuild(example, Tensor, results)

    def _export_module(self, exporter, module, args, kwargs, count):
        """The ONNX names of the ``count`` outputs the exporter writes for ``module(*args, **kwargs)``."""
        names = [_name(n) for n in flatten(exporter(self, module, *args, **kwargs), (str, Value))]
        if len(names) != count:
            raise ExportError(f"to_onnx: the exporter of {type(module).__name__} returned {len(names)} "
                              f"ONNX values for the {count} tensors the module returns")
        return names

    def trace(self, fn, args, kwargs):
        """Trace ``fn`` on leaves holding the Values' example arrays, and again on their probe arrays
        (with fixed sizes once: the two are the same), and convert the pair of graphs."""
        example = _trace(fn, args, kwargs, "example")
        probe = example if self.export.fixed else _trace(fn, args, kwargs, "probe")
        values, probe_inputs = example.inputs, probe.inputs
        self.convert(example.nodes, values, probe.nodes, probe_inputs)
        return rebuild(example.result, Tensor, (values[id(t)] for t in example.outputs))

    def convert(self, nodes, values, probes=None, probe_inputs=None):
        """Convert tinygraph ``nodes`` (topologically ordered, traced at the example sizes) into this
        graph, node for node with ``probes``, the same computation traced at the probe sizes (None:
        the sizes are fixed, the probe values are the example values). ``values`` maps ``id(leaf)``
        to the Value of each input leaf (``probe_inputs`` the same for the probe trace) and is filled
        with every node's; any other leaf is a constant, which must be the same in both traces."""
        if probes is None:
            probes, probe_inputs = nodes, values
        if len(probes) != len(nodes):
            raise ExportError(
                f"to_onnx: traced again with the dynamic axes {self.export.axis_list()} longer, the "
                f"computation has {len(probes)} nodes instead of {len(nodes)}: a Python loop over a "
                f"size (a recurrence unrolled step by step: call the layer as a module, which exports "
                f"as one ONNX op) or control flow on the inputs; fix those axes (dynamic_axes) to "
                f"export it as traced")
        position = {id(t): k for k, t in enumerate(nodes)}
        probe_position = {id(t): k for k, t in enumerate(probes)}
        for t, p in zip(nodes, probes):
            if id(t) in values:
                if probe_inputs.get(id(p)) is not values[id(t)]:
                    raise self._mismatch(t, p, "an input in one trace is not that input in the other")
                continue
            if t.op is None:
                if p is not t and not _same(t._data, p._data):
                    raise self._constant_error(t, nodes)
                values[id(t)] = self.parameter(t)
                continue
            if p.op is None or p.op.name != t.op.name or \
                    [position[id(i)] for i in t.inputs] != [probe_position[id(i)] for i in p.inputs]:
                raise self._mismatch(t, p, "the graphs differ here")
            sized = SIZED_ATTRIBUTES.get(t.op.name, ())
            attrs, probe_attrs = t.op.attrs(), p.op.attrs()
            changed = [k for k, v in attrs.items() if k not in sized and not _same(v, probe_attrs.get(k))]
            if changed:
                shown = ", ".join(f"{attrs[k]!r} vs {probe_attrs[k]!r}" for k in changed)
                raise self._mismatch(t, p, f"its {', '.join(changed)} changes with the sizes ({shown})")
            values[id(t)] = self.convert_node(t, [values[id(i)] for i in t.inputs], p)
        return values

    def convert_node(self, t, inputs, probe):
        """One tinygraph node (``probe``: the same node traced at the probe sizes), written by its
        op's rule."""
        op = t.op
        rule = CONVERTERS.get(op.name)
        if rule is None:
            reason = UNSUPPORTED.get(op.name, "it has no entry in tinygraph.export's op table")
            raise ExportError(f"to_onnx: {_where(t)} cannot be exported to ONNX: {reason}")
        out = Value(None, t._data, probe._data)
        try:
            with self.scoped(t.scope or ""):
                out.name = rule(self, op, inputs, out)
        except ExportError as exc:
            if str(exc).startswith("to_onnx:"):  # already says where (a module call's own export)
                raise
            raise ExportError(f"to_onnx: {_where(t)}: {exc}") from None
        return out

    @contextlib.contextmanager
    def scoped(self, path):
        """Name the nodes emitted inside after the tinygraph scope ``path`` (``lstm/l0``)."""
        outer, self.scope = self.scope, path
        try:
            yield
        finally:
            self.scope = outer

    def _mismatch(self, t, p, what):
        return ExportError(
            f"to_onnx: {_where(t)} does not follow the dynamic axes {self.export.axis_list()}: traced "
            f"again with them longer, {what}. A value computed in Python from a size at trace time "
            f"(x.shape[0] in an index or a count, a loop over steps) would be a constant of the export, "
            f"wrong at other sizes; fix those axes (dynamic_axes) to export it as traced")

    def _constant_error(self, t, nodes):
        reader = next((n for n in nodes if n.op is not None and any(i is t for i in n.inputs)), None)
        return ExportError(
            f"to_onnx: {_where(reader) if reader is not None else 'a constant'} reads a constant "
            f"{t.dtype} {t.shape} that changes when the dynamic axes {self.export.axis_list()} change "
            f"size: it was computed outside the graph from the input at trace time (a count of "
            f"elements as in tg.mean over a dynamic axis, an array made from x.shape or x.data); "
            f"compute it with ops, or fix those axes (dynamic_axes) to export it as traced")

    def emit_call(self, call, inputs):
        """The ONNX names of a recorded module call's outputs, written once per graph."""
        names = self._calls.get(id(call))
        if names is None:
            args, kwargs = call.arguments(inputs)
            names = self._calls[id(call)] = self._export_module(exporter_of(call.module), call.module, args,
                                                                kwargs, call.count)
        return names


def _name(v):
    return "" if v is None else v if isinstance(v, str) else v.name


def _where(t):
    what = f"op '{t.op.name}'" if t.op is not None else f"the leaf {t.name or t.shape}"
    return f"{what} (scope '{t.scope or '<root>'}')"


def _same(a, b):
    """Equal attribute values or constants: arrays by dtype, shape and contents (NaN equal to NaN)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype and
                a.shape == b.shape and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, slice) and isinstance(b, slice):
        return (a.start, a.stop, a.step) == (b.start, b.stop, b.step)
    return type(a) is type(b) and a == b


class _Traced:
    """One trace: its nodes in topological order, ``inputs`` (``id(leaf)`` -> Value), the result."""

    def __init__(self, nodes, inputs, result, outputs):
        self.nodes, self.inputs, self.result, self.outputs = nodes, inputs, result, outputs


def _trace(fn, args, kwargs, which):
    """``fn`` traced on leaves holding the Values' ``which`` arrays ("example" or "probe")."""
    inputs = {}

    def leaf(v):
        t = Tensor._wrap(getattr(v, which))
        inputs[id(t)] = v
        return t
    args, kwargs = replace(args, kwargs, Value, leaf)
    with enable_grad(), release.keep_values(), Interceptor():
        result = fn(*args, **kwargs)
    outputs = flatten(result, Tensor)
    return _Traced(toposort(outputs), inputs, result, outputs)


# --- structures of tensors ---------------------------------------------------------------------
def flatten(obj, kind):
    """The items of type ``kind`` in a structure of tuples and lists, depth first."""
    if isinstance(obj, kind):
        return [obj]
    if isinstance(obj, (tuple, list)):
        return [item for part in obj for item in flatten(part, kind)]
    return []


def rebuild(obj, kind, items):
    """``obj`` with each item of type ``kind`` replaced by the next of ``items``."""
    if isinstance(obj, kind):
        return next(items)
    if isinstance(obj, (tuple, list)):
        return type(obj)(rebuild(part, kind, items) for part in obj)
    return obj


def replace(args, kwargs, kind, make):
    """``(args, kwargs)`` with every item of type ``kind`` replaced by ``make(item)``."""
    args = rebuild(args, kind, (make(v) for v in flatten(args, kind)))
    return args, {k: rebuild(v, kind, (make(i) for i in flatten(v, kind))) for k, v in kwargs.items()}


def run(fn, args, kwargs, which):
    """``fn`` run eagerly on the Values' ``example`` or ``probe`` arrays (no graph, no interception)."""
    args, kwargs = replace(args, kwargs, Value, lambda v: Tensor._wrap(getattr(v, which)))
    with no_grad(), Interceptor(active=False):
        return fn(*args, **kwargs)


# --- exporters of whole modules -----------------------------------------------------------------
def exporter_of(obj):
    """The registered exporter of ``obj``'s class (or of its nearest base class), else None."""
    for cls in type(obj).__mro__:
        if cls in EXPORTERS:
            return EXPORTERS[cls]
    return None


class Call:
    """One call of a module with an exporter, recorded during a trace: the module, its arguments
    with each Tensor replaced by a slot, and its outputs at the arrays it last ran on."""

    def __init__(self, module, args, kwargs, outputs):
        self.module, self.args, self.kwargs = module, args, kwargs
        self.tensors = flatten((args, tuple(kwargs.values())), Tensor)
        self.count = len(outputs)
        self._last = (tuple(t._data for t in self.tensors), outputs)

    def arguments(self, replacements):
        """(args, kwargs) with the Tensors replaced by ``replacements`` in order."""
        items = iter(replacements)
        args = rebuild(self.args, Tensor, items)
        return args, {k: rebuild(v, Tensor, items) for k, v in self.kwargs.items()}

    def outputs(self, arrays):
        """The module's flattened output arrays for these input arrays (run once per new set)."""
        if len(arrays) == len(self._last[0]) and all(a is b for a, b in zip(arrays, self._last[0])):
            return self._last[1]
        args, kwargs = self.arguments([Tensor._wrap(a) for a in arrays])
        with no_grad(), Interceptor(active=False):
            result = self.module(*args, **kwargs)
        outputs = [t._data for t in flatten(result, Tensor)]
        self._last = (tuple(arrays), outputs)
        return outputs


class ModuleCall(Op, register=False):
    """Output ``index`` of a recorded module call: in a traced graph the call is one node per
    output, written by the module's exporter (``GraphBuilder.emit_call``). () or the call's Tensor
    arguments -> the output."""
    name = "module_call"
    differentiable = False
    saves = ()

    def __init__(self, call, index):
        self._call, self.index = call, index
        self.module = type(call.module).__name__

    def forward(self, *arrays):
        return self._call.outputs(arrays)[self.index]

    def vjp(self, B, g, out, *inputs):
        return (None,) * len(inputs)


def _module_call(b, op, inputs, out):
    return b.emit_call(op._call, inputs)[op.index]


CONVERTERS["module_call"] = _module_call


class Interceptor:
    """While active, ``Module.__call__`` in this thread of a module with an exporter runs the module
    and returns its outputs as ``ModuleCall`` nodes (``tinygraph.tracing.CALLS``). Inside such a call,
    and with ``active=False``, modules run as they are."""

    def __init__(self, active=True):
        self.active, self.thread = active, threading.get_ident()

    def __enter__(self):
        CALLS.append(self)
        return self

    def __exit__(self, *exc):
        CALLS.remove(self)
        return False

    def __call__(self, module, args, kwargs):
        if self.thread != threading.get_ident():  # another thread's export: find this thread's own
            mine = [c for c in CALLS if isinstance(c, Interceptor) and c.thread == threading.get_ident()]
            return mine[-1](module, args, kwargs) if mine else module.forward(*args, **kwargs)
        if not self.active or exporter_of(module) is None:
            return module.forward(*args, **kwargs)
        with Interceptor(active=False):
            result = module.forward(*args, **kwargs)
        outputs = flatten(result, Tensor)
        call = Call(module, args, kwargs, [t._data for t in outputs])
        nodes = iter(apply(ModuleCall(call, k), *call.tensors) for k in range(len(outputs)))
        return rebuild(result, Tensor, nodes)
