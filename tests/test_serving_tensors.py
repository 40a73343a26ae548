"""serving/tensors.py, the request checks of serving/service.py and serving/errors.py: TensorProtos
as TF Serving writes and reads them, and TensorFlow's errors answered with TensorFlow's own code
and message."""
import grpc
import numpy as np
import pytest
import tensorflow as tf
from serving_fakes import predict_request, save_scale
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from serving import server as S
from serving.config import write_config
from serving.errors import ServableError, op_message, status_of
from serving.service import Limits, to_array
from serving.tensors import from_proto, to_proto

ARRAYS = [np.array([1.5, -2], np.float32), np.arange(6, dtype=np.int64).reshape(2, 3), np.array(True),
          np.array([1, 255], np.uint8), np.array([-3, 7], np.int32), np.array([0.25, 8], np.float64),
          np.array([0.5, 2], np.float16), np.array([1 + 2j, 3 - 1j], np.complex64), np.array([2**40], np.uint64)]


@pytest.mark.parametrize("array", ARRAYS, ids=[str(a.dtype) for a in ARRAYS])
def test_numbers_travel_in_typed_fields_and_tensorflow_reads_them(array):
    proto = to_proto(array)
    assert proto.tensor_content == b"" and proto.dtype == tf.as_dtype(array.dtype).as_datatype_enum
    assert np.array_equal(tf.make_ndarray(proto), array)  # TensorFlow's reader agrees
    assert np.array_equal(from_proto(proto), array)
    assert np.array_equal(from_proto(tf.make_tensor_proto(array)), array)  # and we read tensor_content


def test_strings_and_empty_shapes():
    proto = to_proto(np.array([["a", b"b"]], dtype=object))
    assert (list(proto.string_val), [d.size for d in proto.tensor_shape.dim]) == ([b"a", b"b"], [1, 2])
    assert from_proto(proto).tolist() == [[b"a", b"b"]]
    assert from_proto(to_proto(np.zeros((2, 0), dtype=object))).shape == (2, 0)


def typed(dtype, size, field, values):
    proto = tensor_pb2.TensorProto(dtype=dtype)
    proto.tensor_shape.dim.add(size=size)
    getattr(proto, field).extend(values)
    return proto


@pytest.mark.parametrize("values, expected", [
    ([], [0, 0, 0]), ([7], [7, 7, 7]), ([1, 2], [1, 2, 2]), ([1, 2, 3, 4, 5], [1, 2, 3])])
def test_typed_values_fill_the_shape_as_tensorflow_does(values, expected):
    """Tensor::FromProto: none -> zeros, fewer -> the last repeated, more -> the first ones."""
    assert from_proto(typed(types_pb2.DT_INT64, 3, "int64_val", values)).tolist() == expected
    strings = from_proto(typed(types_pb2.DT_STRING, 3, "string_val", [str(v).encode() for v in values]))
    assert strings.tolist() == ([b""] * 3 if not values else [str(v).encode() for v in expected])


def test_unreadable_protos_are_value_errors():
    wrong_size = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_content=b"\0" * 8)
    wrong_size.tensor_shape.dim.add(size=3)
    with pytest.raises(ValueError, match="holds 8 bytes"):
        from_proto(wrong_size)
    with pytest.raises(ValueError, match="not supported"):
        from_proto(tensor_pb2.TensorProto(dtype=types_pb2.DT_RESOURCE))
    with pytest.raises(ValueError, match="Cannot send"):
        to_proto(np.array(["2020-01-01"], dtype="datetime64[D]"))


def test_request_checks_say_what_is_wrong_and_which_flag_limits_it():
    spec = tf.TensorSpec([None], tf.float32)

    def code(proto, limits=None):
        limits = limits or Limits(max_batch_size=2)
        with pytest.raises(ServableError) as error:
            to_array("x", proto, spec, limits)
        return error.value.code, str(error.value)
    assert code(to_proto(np.array([b"a"], dtype=object))) == (
        grpc.StatusCode.INVALID_ARGUMENT, "input 'x': Expects arg to be float but string is provided")
    over = code(to_proto(np.ones(3, np.float32)))
    assert over[0] == grpc.StatusCode.RESOURCE_EXHAUSTED and "--max_batch_size 2" in over[1]
    exclude = to_proto(np.array([[b"m1", b"m2", b""]], dtype=object))
    with pytest.raises(ServableError, match="2 exclusions, more than the server's --max_exclusions 1"):
        to_array("exclude", exclude, tf.TensorSpec([None, None], tf.string), Limits(max_exclusions=1))
    strings = tf.TensorSpec([None, None], tf.string)
    assert to_array("exclude", exclude, strings, Limits(max_exclusions=2)).shape == (1, 3)


@tf.function(input_signature=[tf.TensorSpec([], tf.int32)])
def top_k(k):
    return tf.math.top_k(tf.constant([1.0, 2.0]), k=k).values


def test_tensorflow_errors_keep_their_code_and_message():
    with pytest.raises(tf.errors.InvalidArgumentError) as error:
        top_k(tf.constant(-1))
    assert str(error.value).startswith("Graph execution error:")  # what Python shows
    assert status_of(error.value) == (grpc.StatusCode.INVALID_ARGUMENT, "Need k >= 0, got -1")
    oom = tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor with shape[1099511627776]")
    assert status_of(oom) == (grpc.StatusCode.RESOURCE_EXHAUSTED, oom.message)
    assert status_of(MemoryError())[0] == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert status_of(tf.errors.NotFoundError(None, None, "no file"))[0] == grpc.StatusCode.NOT_FOUND
    assert status_of(ValueError("bad"))[0] == grpc.StatusCode.INVALID_ARGUMENT
    assert status_of(RuntimeError("bug"))[0] == grpc.StatusCode.INTERNAL
    eager = "{{function_node x}} Need k >= 0, got -1 [Op:TopKV2]"
    assert op_message(eager) == "{{function_node x}} Need k >= 0, got -1"


@pytest.mark.parametrize("error", [tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor"),
                                   MemoryError("cannot allocate")], ids=["ResourceExhaustedError", "MemoryError"])
def test_out_of_memory_answers_resource_exhausted(tmp_path, monkeypatch, error):
    save_scale(tmp_path / "double" / "1", 2.0)
    config = write_config(str(tmp_path / "models.config"), {"double": "double"})

    def out_of_memory(self, request):
        raise error
    monkeypatch.setattr(S.ModelServer, "_predict", out_of_memory)
    port = S.free_port()
    server = S.serve(config, port, poll_seconds=0)
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        with pytest.raises(grpc.RpcError) as answer:
            prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(predict_request(), timeout=30)
        assert answer.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "allocat" in answer.value.details()
    finally:
        channel.close()
        server.stop(None)
