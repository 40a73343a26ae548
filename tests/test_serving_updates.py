"""Model updates while serving: new versions swap in under load, broken ones never do,
config file edits are picked up. Loopback only; every wait is bounded."""
import os
import threading
import time

import grpc
import tensorflow as tf
from serving_fakes import broken_copy, predict_request, save_scale
from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc, prediction_service_pb2_grpc

from serving import health
from serving import server as S

AVAILABLE, END = get_model_status_pb2.ModelVersionStatus.AVAILABLE, get_model_status_pb2.ModelVersionStatus.END


def wait_for(condition, seconds=60.0):
    """Polls `condition` every 50 ms; fails the test after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def start(tmp_path, models, **options):
    config = S.write_config(str(tmp_path / "models.config"), {name: name for name in models})
    port = S.free_port()
    server = S.serve(config, port, poll_seconds=0.1, **options)
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    return server, channel, config


def test_new_version_swaps_in_under_load_without_a_failed_request(tmp_path):
    save_scale(tmp_path / "double" / "1", 1.0)
    server, channel, _ = start(tmp_path, ["double"])
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    answers = [[], []]  # per load thread: (version, y)
    failures, stop = [], threading.Event()

    def load(seen):
        for _ in range(3000):  # bounded in count; stopped sooner once version 2 has served a while
            if stop.is_set():
                return
            try:
                response = stub.Predict(predict_request(), timeout=10)
                seen.append((response.model_spec.version.value, tf.make_ndarray(response.outputs["y"]).tolist()))
            except grpc.RpcError as error:
                failures.append(error.code())
    threads = [threading.Thread(target=load, args=(seen,)) for seen in answers]
    try:
        for thread in threads:
            thread.start()
        wait_for(lambda: min(map(len, answers)) >= 20)
        save_scale(tmp_path / "double" / "2", 3.0)
        wait_for(lambda: sum(v == 2 for seen in answers for v, _ in seen) >= 40)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        channel.close()
        server.registry.stop()
        server.stop(None)
    assert failures == []
    expected = {1: [1.0, 2.5], 2: [3.0, 7.5]}  # y = factor * [1, 2.5]
    for seen in answers:
        assert all(y == expected[version] for version, y in seen)
        versions = [version for version, _ in seen]
        first_new = versions.index(2)
        assert set(versions[:first_new]) == {1} and set(versions[first_new:]) == {2}  # one clean swap


def test_broken_versions_are_reported_and_never_replace_a_working_one(tmp_path):
    save_scale(tmp_path / "double" / "1", 1.0)
    server, channel, _ = start(tmp_path, ["double"])
    prediction = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    models = model_service_pb2_grpc.ModelServiceStub(channel)
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "double"

    def statuses():
        return [(s.version, s.state, s.status.error_message)
                for s in models.GetModelStatus(request, timeout=10).model_version_status]
    try:
        broken_copy(tmp_path / "double" / "1", tmp_path / "double" / "2", "truncated")
        broken_copy(tmp_path / "double" / "1", tmp_path / "double" / "3", "no_variables")
        wait_for(lambda: [(v, s) for v, s, _ in statuses()][:2] == [(3, END), (2, END)])
        (v3, _, error3), (v2, _, error2), one = statuses()
        assert error3 and error2 and one == (1, AVAILABLE, "")
        assert prediction.Predict(predict_request(), timeout=10).model_spec.version.value == 1
        assert health.check(channel, "double") == health.SERVING

        save_scale(tmp_path / "double" / "4", 5.0)  # a good version after the broken ones
        wait_for(lambda: prediction.Predict(predict_request(), timeout=10).model_spec.version.value == 4)
        assert [(v, s) for v, s, _ in statuses()] == [(4, AVAILABLE), (3, END), (2, END), (1, END)]
    finally:
        channel.close()
        server.registry.stop()
        server.stop(None)


def test_config_file_edits_add_and_remove_models(tmp_path):
    save_scale(tmp_path / "double" / "1", 2.0)
    save_scale(tmp_path / "triple" / "1", 3.0)
    server, channel, config = start(tmp_path, ["double"], config_poll_seconds=0.1)
    try:
        assert health.check(channel, "double") == health.SERVING
        staging = S.write_config(config + ".tmp", {"triple": "triple"})
        os.replace(staging, config)  # atomic, as a config push should be
        wait_for(lambda: server.registry.ready("triple") is True and server.registry.ready("double") is None)
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.Predict(predict_request(name="triple"), timeout=10)
        assert tf.make_ndarray(response.outputs["y"]).tolist() == [3.0, 7.5]
    finally:
        channel.close()
        server.registry.stop()
        server.stop(None)
