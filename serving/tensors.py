"""numpy <-> TensorProto, fast paths for the dtypes the models use.

`tf.make_tensor_proto` and `tf.make_ndarray` cost a few hundred microseconds per call in
Python; these write and read `tensor_content` / `string_val` directly, which is the same
wire format TF Serving produces and accepts, and fall back to TensorFlow for the rest.
"""
import math

import numpy as np
from tensorflow.core.framework import tensor_pb2, types_pb2

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
        import tensorflow as tf
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
    import tensorflow as tf
    return tf.make_ndarray(proto)
