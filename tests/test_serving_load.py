"""Under load: health and status stay answerable whatever the inference queue holds, the
queue itself is bounded, and a request's exclusions are capped by --max_exclusions."""
import threading
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from serving_fakes import code_of, health_of, predict_request, save_module, save_scale
from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc, prediction_service_pb2_grpc

from serving import server as S
from serving.config import write_config
from serving.tensors import to_proto


def wait_for(condition, seconds=60.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def test_health_and_status_answer_with_20_predictions_in_flight(tmp_path, monkeypatch):
    save_scale(tmp_path / "double" / "1", 2.0)
    config = write_config(str(tmp_path / "models.config"), {"double": "double"})
    release, running = threading.Event(), []
    original = S.ModelServer._predict

    def slow_predict(self, request):  # a Predict that holds its worker until released
        running.append(1)
        release.wait(60)
        return original(self, request)
    monkeypatch.setattr(S.ModelServer, "_predict", slow_predict)
    port = S.free_port()
    server = S.serve(config, port, workers=4, poll_seconds=0)
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    prediction = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    try:
        calls = [prediction.Predict.future(predict_request(), timeout=60) for _ in range(20)]  # 4 run, 16 wait
        wait_for(lambda: len(running) == 4 and server.model_server.admission._admitted == 20)
        start = time.monotonic()
        assert health_of(channel, "", timeout=2) == "SERVING"
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = "double"
        status = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(request, timeout=2)
        assert [s.version for s in status.model_version_status] == [1]
        assert time.monotonic() - start < 2
        assert code_of(lambda: prediction.Predict(predict_request(), timeout=5)) == grpc.StatusCode.RESOURCE_EXHAUSTED
        release.set()
        assert all(call.result().model_spec.version.value == 1 for call in calls)
    finally:
        release.set()
        channel.close()
        server.stop(None)


class CountExclusions(tf.Module):
    """serving_default(exclude string [B, None], '' pads) -> count int32 [B]: the non-empty ones."""

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.string, name="exclude")])
    def serve(self, exclude):
        return {"count": tf.reduce_sum(tf.cast(exclude != "", tf.int32), axis=1)}


def test_exclusions_over_the_limit_are_refused(tmp_path):
    save_module(CountExclusions(), tmp_path / "count" / "1", serving_default=CountExclusions().serve)
    port = S.free_port()
    server = S.serve(write_config(str(tmp_path / "models.config"), {"count": "count"}), port, poll_seconds=0,
                     limits=S.Limits(max_exclusions=3))
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)

    def count(exclude):
        request = predict_request("count", {})
        request.inputs["exclude"].CopyFrom(to_proto(np.array(exclude, dtype=object)))
        return list(stub.Predict(request, timeout=30).outputs["count"].int_val)
    try:
        assert count([[b"m1", b"m2"], [b"m3", b""]]) == [2, 1]  # 3 exclusions: at the limit; '' pads
        with pytest.raises(grpc.RpcError) as error:
            count([[b"m1", b"m2"], [b"m3", b"m5"]])
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "4 exclusions" in error.value.details() and "--max_exclusions 3" in error.value.details()
    finally:
        channel.close()
        server.stop(None)
