"""The ONNX file format written by hand: protobuf's wire format for the few messages an export needs.

A protobuf message is a sequence of fields, each a key ``field_number << 3 | wire_type`` (a varint)
followed by its value: a varint (wire type 0: ints, enums), four little-endian bytes (wire type 5:
float), or a length-delimited payload (wire type 2: strings, bytes and nested messages, written as
the varint byte length and the bytes). A repeated field is the same field written once per element.
That is all of it this module uses; the field numbers are those of ``onnx/onnx.proto`` (proto2):

    ModelProto          ir_version 1, producer_name 2, producer_version 3, doc_string 6, graph 7,
                        opset_import 8
    OperatorSetIdProto  domain 1, version 2
    GraphProto          node 1, name 2, initializer 5, doc_string 10, input 11, output 12
    NodeProto           input 1, output 2, name 3, op_type 4, attribute 5
    AttributeProto      name 1, f 2, i 3, s 4, t 5, g 6, floats 7, ints 8, strings 9, type 20
    TensorProto         dims 1, data_type 2, name 8, raw_data 9 (little-endian, row-major)
    ValueInfoProto      name 1, type 2
    TypeProto           tensor_type 1  ->  elem_type 1, shape 2  ->  dim 1  ->  dim_value 1 | dim_param 2

Fields are written in field-number order and repeated scalars unpacked (proto2's default), which is
how protobuf itself serializes: parsing a file and serializing it again gives the same bytes. Every
function returns ``bytes``; the same arguments always give the same bytes.
"""
import struct

import numpy as np

# TensorProto.DataType for the numpy dtypes an export writes
DATA_TYPES = {np.dtype(np.float32): 1, np.dtype(np.uint8): 2, np.dtype(np.int8): 3,
              np.dtype(np.uint16): 4, np.dtype(np.int16): 5, np.dtype(np.int32): 6,
              np.dtype(np.int64): 7, np.dtype(np.bool_): 9, np.dtype(np.float16): 10,
              np.dtype(np.float64): 11, np.dtype(np.uint32): 12, np.dtype(np.uint64): 13}

# AttributeProto.AttributeType
_FLOAT, _INT, _STRING, _TENSOR, _GRAPH, _FLOATS, _INTS, _STRINGS = 1, 2, 3, 4, 5, 6, 7, 8
_VARINT, _FIXED32, _BYTES = 0, 5, 2


def data_type(dtype):
    """The ONNX element type of a numpy dtype; ``ValueError`` for one ONNX cannot hold."""
    try:
        return DATA_TYPES[np.dtype(dtype)]
    except KeyError:
        raise ValueError(f"ONNX has no element type for numpy dtype {np.dtype(dtype)}; use float32, "
                         f"float64, an integer type or bool") from None


# --- the wire format ----------------------------------------------------------------------------
def varint(n):
    """Base-128 varint, least significant group first; a negative int64 as its two's complement."""
    n = int(n)
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _key(field, wire):
    return varint(field << 3 | wire)


def integer(field, n):
    """Field ``field`` as a varint (wire type 0): ints, enums, bools; a negative int takes ten bytes."""
    return _key(field, _VARINT) + varint(n)


def floating(field, x):
    """Field ``field`` as a little-endian float32 (wire type 5)."""
    return _key(field, _FIXED32) + struct.pack("<f", x)


def length_delimited(field, payload):
    """Field ``field`` as its length (a varint) and the ``payload`` bytes (wire type 2): an embedded
    message, bytes or a packed repeated field."""
    return _key(field, _BYTES) + varint(len(payload)) + payload


def string(field, text):
    """Field ``field`` holding ``text`` as UTF-8 bytes."""
    return length_delimited(field, text.encode("utf-8"))


def repeated(field, payloads):
    """A repeated message field: each of ``payloads`` (encoded messages) as field ``field``, in order."""
    return b"".join(length_delimited(field, p) for p in payloads)


# --- messages -----------------------------------------------------------------------------------
def tensor(name, array):
    """TensorProto: ``array``'s dims, element type and bytes (raw_data, little-endian, C order)."""
    array = np.asarray(array)
    little = array.astype(array.dtype.newbyteorder("<"), copy=False)
    return (b"".join(integer(1, n) for n in array.shape) + integer(2, data_type(array.dtype)) +
            (string(8, name) if name else b"") +
            length_delimited(9, np.ascontiguousarray(little).tobytes()))


class Graph(bytes):
    """An encoded GraphProto, as an attribute value (Scan's ``body``)."""


def attribute(name, value):
    """AttributeProto of a Python value: int (bool too), float, str, a list of one of those, an
    ndarray (a tensor) or a ``Graph``."""
    head = string(1, name)
    if isinstance(value, Graph):
        return head + length_delimited(6, value) + integer(20, _GRAPH)
    if isinstance(value, np.ndarray):
        return head + length_delimited(5, tensor("", value)) + integer(20, _TENSOR)
    if isinstance(value, (bool, int, np.integer)):
        return head + integer(3, value) + integer(20, _INT)
    if isinstance(value, (float, np.floating)):
        return head + floating(2, value) + integer(20, _FLOAT)
    if isinstance(value, str):
        return head + string(4, value) + integer(20, _STRING)
    if isinstance(value, (list, tuple)) and value:
        if all(isinstance(v, str) for v in value):
            return head + b"".join(string(9, v) for v in value) + integer(20, _STRINGS)
        if all(isinstance(v, (int, np.integer)) for v in value):
            return head + b"".join(integer(8, v) for v in value) + integer(20, _INTS)
        if all(isinstance(v, (int, float, np.integer, np.floating)) for v in value):
            return head + b"".join(floating(7, v) for v in value) + integer(20, _FLOATS)
    raise TypeError(f"ONNX attribute {name!r}: cannot encode {value!r} (an int, float, str, a non-empty "
                    f"list of one of them, an ndarray or a Graph)")


def node(op_type, inputs, outputs, name="", attributes=()):
    """NodeProto. ``inputs`` may hold "" for an optional input left out; ``attributes`` is a sequence
    of ``(name, value)`` pairs, written in that order."""
    return (b"".join(string(1, i) for i in inputs) + b"".join(string(2, o) for o in outputs) +
            (string(3, name) if name else b"") + string(4, op_type) +
            repeated(5, [attribute(k, v) for k, v in attributes]))


def value_info(name, dtype, dims):
    """ValueInfoProto of a tensor: each dim an int (fixed), a str (a named dynamic axis, dim_param)
    or None (a dynamic axis without a name)."""
    def dimension(d):
        if d is None:
            return b""
        return string(2, d) if isinstance(d, str) else integer(1, d)
    shape = repeated(1, [dimension(d) for d in dims])
    tensor_type = integer(1, data_type(dtype)) + length_delimited(2, shape)
    return string(1, name) + length_delimited(2, length_delimited(1, tensor_type))


def graph(name, nodes, initializers, inputs, outputs, doc=""):
    """GraphProto from already encoded nodes, initializers and value infos."""
    return Graph(repeated(1, nodes) + string(2, name) + repeated(5, initializers) +
                 (string(10, doc) if doc else b"") + repeated(11, inputs) + repeated(12, outputs))


def model(graph_bytes, opset, ir_version, producer, version, doc=""):
    """ModelProto around an encoded graph, importing the default ONNX domain at ``opset``."""
    opset_import = string(1, "") + integer(2, opset)
    return (integer(1, ir_version) + string(2, producer) + string(3, version) +
            (string(6, doc) if doc else b"") + length_delimited(7, graph_bytes) +
            length_delimited(8, opset_import))
