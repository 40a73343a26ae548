"""A bounded fuzz of the server: 3,000 random or malformed PredictRequests over loopback,
then the server must still answer correctly, with stable memory."""
import grpc
import numpy as np
import psutil
import tensorflow as tf
from serving_fakes import predict_request, save_scale
from tensorflow.core.framework import tensor_pb2
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from serving import server as S
from serving.config import write_config

REQUESTS = 3000
EXPECTED = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
            grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.RESOURCE_EXHAUSTED}


def random_tensor(rng) -> tensor_pb2.TensorProto:
    proto = tensor_pb2.TensorProto(dtype=int(rng.choice([0, 1, 2, 3, 7, 9, 10, 23, 99])))
    for _ in range(rng.integers(0, 4)):
        proto.tensor_shape.dim.add(size=int(rng.choice([-1, 0, 1, 2, 5, 20_000, 10**12])))
    proto.tensor_shape.unknown_rank = bool(rng.random() < 0.05)
    filler = rng.integers(0, 5)
    if filler == 0:
        proto.float_val.extend(rng.normal(size=rng.integers(0, 8)).tolist())
    elif filler == 1:
        proto.string_val.extend(rng.bytes(rng.integers(0, 10)) for _ in range(rng.integers(0, 5)))
    elif filler == 2:
        proto.tensor_content = rng.bytes(int(rng.integers(0, 64)))
    elif filler == 3:
        proto.int64_val.extend(rng.integers(-5, 5, size=rng.integers(0, 8)).tolist())
    return proto


def random_request(rng) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = str(rng.choice(["double", "double", "double", "nope", ""]))
    request.model_spec.signature_name = str(rng.choice(["", "serving_default", "other"]))
    choice = rng.integers(0, 4)
    if choice == 1:
        request.model_spec.version.value = int(rng.integers(-2, 4))
    elif choice == 2:
        request.model_spec.version_label = str(rng.choice(["stable", ""]))
    for key in rng.choice(["x", "x", "q", "\u00e9"], size=rng.integers(0, 3), replace=False):
        request.inputs[str(key)].CopyFrom(random_tensor(rng))
    if rng.random() < 0.1:
        request.output_filter.append(str(rng.choice(["y", "z", "w"])))
    return request


def test_random_and_malformed_requests_never_break_the_server(tmp_path):
    save_scale(tmp_path / "double" / "1", 2.0)
    config = write_config(str(tmp_path / "models.config"), {"double": "double"})
    port = S.free_port()
    server = S.serve(config, port, poll_seconds=0, max_request_bytes=1 << 16)
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    raw = channel.unary_unary("/tensorflow.serving.PredictionService/Predict")  # bytes in, bytes out
    rng = np.random.default_rng(0)
    codes, process = {}, psutil.Process()
    try:
        for i in range(REQUESTS):
            if i == REQUESTS // 3:
                rss_early = process.memory_info().rss
            try:
                if rng.random() < 0.1:
                    raw(rng.bytes(int(rng.integers(0, 200))), timeout=10)
                else:
                    stub.Predict(random_request(rng), timeout=10)
                code = grpc.StatusCode.OK
            except grpc.RpcError as error:
                code = error.code()
            codes[code] = codes.get(code, 0) + 1
        rss_late = process.memory_info().rss
        response = stub.Predict(predict_request(), timeout=10)
        assert tf.make_ndarray(response.outputs["y"]).tolist() == [2.0, 5.0]
    finally:
        channel.close()
        server.stop(None)
    # INTERNAL: bytes that are no PredictRequest at all (gRPC's own deserialization error).
    assert set(codes) <= EXPECTED | {grpc.StatusCode.INTERNAL}, codes
    assert codes.get(grpc.StatusCode.INVALID_ARGUMENT, 0) > REQUESTS // 10  # the fuzz reached the checks
    assert rss_late - rss_early < 64 << 20, f"memory grew {(rss_late - rss_early) >> 20} MiB"
