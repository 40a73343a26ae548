"""numpy <-> TensorProto as TF Serving writes and reads them (the request checks: serving/service.py).

Numeric tensors are written in typed fields, as TF Serving 2.16's Predict answers; read
from `tensor_content` of the exact size or typed values (as `Tensor::FromProto`: none means
zeros, too few are filled with the last, too many cut). numpy only: no TensorFlow import.
"""
import math
from typing import Optional

import numpy as np

from serving.protos import tensor_pb2, types_pb2

T = types_pb2
_TYPES = {  # numpy dtype: (DataType, the TensorProto field its values go in)
    np.dtype(np.float32): (T.DT_FLOAT, "float_val"), np.dtype(np.float64): (T.DT_DOUBLE, "double_val"),
    np.dtype(np.int32): (T.DT_INT32, "int_val"), np.dtype(np.int16): (T.DT_INT16, "int_val"),
    np.dtype(np.int8): (T.DT_INT8, "int_val"), np.dtype(np.uint8): (T.DT_UINT8, "int_val"),
    np.dtype(np.uint16): (T.DT_UINT16, "int_val"), np.dtype(np.int64): (T.DT_INT64, "int64_val"),
    np.dtype(np.uint32): (T.DT_UINT32, "uint32_val"), np.dtype(np.uint64): (T.DT_UINT64, "uint64_val"),
    np.dtype(np.bool_): (T.DT_BOOL, "bool_val"), np.dtype(np.float16): (T.DT_HALF, "half_val"),
    np.dtype(np.complex64): (T.DT_COMPLEX64, "scomplex_val"),
    np.dtype(np.complex128): (T.DT_COMPLEX128, "dcomplex_val")}
_BY_ENUM = {enum: (dtype, field) for dtype, (enum, field) in _TYPES.items()}
_FIELD_NUMBERS = {field.name: field.number for field in tensor_pb2.TensorProto.DESCRIPTOR.fields}


def dtype_name(enum: int) -> str:
    """TensorFlow's name of a DataType enum: "float", "string", "int64", ..."""
    try:
        return T.DataType.Name(enum)[3:].lower()
    except ValueError:
        return f"unknown dtype {enum}"


def _raw(array: np.ndarray) -> np.ndarray:
    """The flat values as the typed field holds them (half: bits; complex: (re, im) pairs)."""
    flat = array.ravel()
    if flat.dtype == np.float16:
        return flat.view(np.uint16)
    return flat.view(flat.real.dtype) if flat.dtype.kind == "c" else flat


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes(out + bytes([value]))


def to_proto(value, proto: Optional[tensor_pb2.TensorProto] = None) -> tensor_pb2.TensorProto:
    """A TensorProto of `value` (array or scalar; str / bytes / object arrays become DT_STRING),
    written into `proto` (an empty one, e.g. a request's `inputs[key]`) when given."""
    array = np.asarray(value)
    proto = tensor_pb2.TensorProto() if proto is None else proto
    if array.dtype.kind in "OSU":
        proto.dtype = T.DT_STRING
        values = array.ravel().tolist()
        try:
            proto.string_val.extend(values)  # bytes: straight in
        except TypeError:  # str among them: encode each (after undoing a partial extend)
            del proto.string_val[:]
            proto.string_val.extend(v if isinstance(v, bytes) else str(v).encode() for v in values)
    else:
        dtype = array.dtype.newbyteorder("=")
        if dtype not in _TYPES:
            raise ValueError(f"Cannot send a {array.dtype} tensor; convert it to one of "
                             f"{sorted(str(d) for d in _TYPES)}")
        proto.dtype, field = _TYPES[dtype]
        raw = _raw(np.ascontiguousarray(array, dtype))
        if raw.dtype.kind == "f" and raw.itemsize >= 4 and raw.size:  # float_val, double_val, complex pairs
            # a packed field's wire bytes are the little-endian values: numpy's buffer, no Python floats
            number, payload = _FIELD_NUMBERS[field], raw.astype(raw.dtype.newbyteorder("<"), copy=False).tobytes()
            proto.MergeFromString(_varint(number << 3 | 2) + _varint(len(payload)) + payload)
        else:
            getattr(proto, field).extend(raw.tolist())
    for size in array.shape:
        proto.tensor_shape.dim.add(size=size)
    return proto


def _fill(values: np.ndarray, count: int, dtype) -> np.ndarray:
    """`count` values from typed ones: none -> zeros, fewer -> last repeated, more -> cut."""
    if len(values) == 0:
        return np.full(count, b"", dtype) if dtype is object else np.zeros(count, dtype)
    if len(values) < count:
        return np.concatenate([values, np.repeat(values[-1:], count - len(values))])
    return values[:count]


def from_proto(proto: tensor_pb2.TensorProto) -> np.ndarray:
    """The numpy array of a TensorProto (either encoding); strings as an object array of bytes.

    Raises:
      ValueError: a shape that is not fully defined, tensor_content of the wrong size, or a
        dtype numpy cannot hold.
    """
    shape = [d.size for d in proto.tensor_shape.dim]
    if proto.tensor_shape.unknown_rank or any(size < 0 for size in shape):
        raise ValueError(f"needs a fully defined shape, got {shape}")
    count = math.prod(shape)
    if proto.dtype == T.DT_STRING:
        if proto.tensor_content:
            raise ValueError("string tensors travel in string_val, not tensor_content")
        return _fill(np.array(list(proto.string_val), dtype=object), count, object).reshape(shape)
    if proto.dtype not in _BY_ENUM:
        raise ValueError(f"tensors of dtype {dtype_name(proto.dtype)} are not supported")
    dtype, field = _BY_ENUM[proto.dtype]
    if proto.tensor_content:
        if len(proto.tensor_content) != count * dtype.itemsize:
            raise ValueError(f"tensor_content holds {len(proto.tensor_content)} bytes; shape {shape} of "
                             f"{dtype_name(proto.dtype)} needs {count * dtype.itemsize}")
        return np.frombuffer(proto.tensor_content, dtype).reshape(shape)
    values = np.array(list(getattr(proto, field))).astype(_raw(np.zeros(0, dtype)).dtype)
    if dtype.kind == "c":
        values = values[:len(values) // 2 * 2]
    return _fill(values.view(dtype), count, dtype).reshape(shape)
