"""numpy <-> TensorProto, fast paths for the dtypes the models use, and request checks.

`tf.make_tensor_proto` and `tf.make_ndarray` cost a few hundred microseconds per call in
Python; these write and read `tensor_content` / `string_val` directly, which is the same
wire format TF Serving produces and accepts, and fall back to TensorFlow for the rest.
"""
import math

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2

from serving.registry import ServableError

_NUMERIC = {np.dtype(np.float32): types_pb2.DT_FLOAT, np.dtype(np.float64): types_pb2.DT_DOUBLE,
            np.dtype(np.int32): types_pb2.DT_INT32, np.dtype(np.int64): types_pb2.DT_INT64,
            np.dtype(np.bool_): types_pb2.DT_BOOL}
_FROM_ENUM = {enum: dtype for dtype, enum in _NUMERIC.items()}


def to_proto(value) -> tensor_pb2.TensorProto:
    """A TensorProto of `value` (numpy array or scalar; str/bytes/object arrays become DT_STRING)."""
    array = np.asarray(value)
    if array.dtype.kind in "OSU":
        proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING)
        proto.string_val.extend(v if isinstance(v, bytes) else str(v).encode() for v in array.ravel())
    elif array.dtype.newbyteorder("<") in _NUMERIC and array.dtype.byteorder in "=<|":
        proto = tensor_pb2.TensorProto(dtype=_NUMERIC[array.dtype.newbyteorder("<")],
                                       tensor_content=np.ascontiguousarray(array).tobytes())
    else:
        return tf.make_tensor_proto(array)
    for size in array.shape:
        proto.tensor_shape.dim.add(size=size)
    return proto


def from_proto(proto: tensor_pb2.TensorProto) -> np.ndarray:
    """The numpy array of a TensorProto; strings come back as an object array of bytes."""
    shape = [d.size for d in proto.tensor_shape.dim]
    count = math.prod(shape)
    if proto.dtype == types_pb2.DT_STRING and len(proto.string_val) == count:
        array = np.empty(count, dtype=object)
        array[:] = list(proto.string_val)
        return array.reshape(shape)
    dtype = _FROM_ENUM.get(proto.dtype)
    if dtype is not None and len(proto.tensor_content) == count * dtype.itemsize and proto.tensor_content:
        return np.frombuffer(proto.tensor_content, dtype).reshape(shape)
    return tf.make_ndarray(proto)


class Limits:
    """Per-request limits: rows in a batch, elements in one tensor."""

    def __init__(self, max_batch_size: int = 10_000, max_tensor_elements: int = 10_000_000):
        self.max_batch_size, self.max_tensor_elements = max_batch_size, max_tensor_elements


def to_array(key: str, proto, spec: tf.TensorSpec, limits: Limits) -> np.ndarray:
    """A request TensorProto as an array for `spec`; INVALID_ARGUMENT when it cannot be one."""
    def invalid(message):
        return ServableError(grpc.StatusCode.INVALID_ARGUMENT, f"input {key!r}: {message}")
    if proto.dtype != spec.dtype.as_datatype_enum:
        try:
            sent = tf.dtypes.as_dtype(proto.dtype).name
        except TypeError:
            sent = f"dtype {proto.dtype}"
        raise invalid(f"Expects arg to be {spec.dtype.name} but {sent} is provided")
    dims = [d.size for d in proto.tensor_shape.dim]
    if proto.tensor_shape.unknown_rank or any(d < 0 for d in dims):
        raise invalid(f"needs a fully defined shape, got {dims}")
    if math.prod(dims) > limits.max_tensor_elements:
        raise invalid(f"{math.prod(dims)} elements, more than the server's limit {limits.max_tensor_elements}")
    if dims and dims[0] > limits.max_batch_size:
        raise invalid(f"batch of {dims[0]} is larger than the maximum batch size {limits.max_batch_size}")
    if not spec.shape.is_compatible_with(dims):
        raise invalid(f"shape {dims} is not compatible with the signature's {spec.shape}")
    try:
        return from_proto(proto)
    except Exception as error:  # contents that do not fill the declared shape, bad encodings
        raise invalid(f"cannot read its values: {str(error).splitlines()[0]}")
