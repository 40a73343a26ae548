"""Model updates while serving: new versions swap in under load, broken ones never do,
config file edits are picked up, a broken entry or a refused reload stops nothing else.
Loopback only; every wait is bounded."""
import os
import shutil
import threading
import time

import grpc
import tensorflow as tf
from serving_fakes import broken_copy, code_of, dangling_copy, health_of, predict_request, save_scale
from tensorflow_serving.apis import (
    get_model_status_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    prediction_service_pb2_grpc,
)
from tensorflow_serving.config import model_server_config_pb2

from serving import server as S
from serving.config import write_config

AVAILABLE, END = get_model_status_pb2.ModelVersionStatus.AVAILABLE, get_model_status_pb2.ModelVersionStatus.END


def wait_for(condition, seconds=60.0):
    """Polls `condition` every 50 ms; fails the test after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def start(tmp_path, models, **options):
    config = write_config(str(tmp_path / "models.config"), {name: name for name in models})
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
        assert health_of(channel, "double") == "SERVING"

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
        assert health_of(channel, "double") == "SERVING"
        staging = write_config(config + ".tmp", {"triple": "triple"})
        os.replace(staging, config)  # atomic, as a config push should be
        wait_for(lambda: server.registry.readiness() == {"triple": True})
        assert (health_of(channel, "triple"), health_of(channel, "double"), health_of(channel)) == (
            "SERVING", "NOT_SERVING", "SERVING")  # a removed model stops serving; the server serves
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.Predict(predict_request(name="triple"), timeout=10)
        assert tf.make_ndarray(response.outputs["y"]).tolist() == [3.0, 7.5]
    finally:
        channel.close()
        server.registry.stop()
        server.stop(None)


def test_health_follows_the_served_versions(tmp_path):
    save_scale(tmp_path / "double" / "1", 2.0)
    save_scale(tmp_path / "triple" / "1", 3.0)
    server, channel, _ = start(tmp_path, ["double", "triple"])
    try:
        assert (health_of(channel), health_of(channel, "double")) == ("SERVING", "SERVING")
        shutil.rmtree(tmp_path / "double" / "1")  # no version left: double, and so the server, not serving
        wait_for(lambda: health_of(channel) == "NOT_SERVING")
        assert (health_of(channel, "double"), health_of(channel, "triple")) == ("NOT_SERVING", "SERVING")
        save_scale(tmp_path / "double" / "2", 2.0)
        wait_for(lambda: health_of(channel) == "SERVING")
        assert code_of(lambda: health_of(channel, "nope")) == grpc.StatusCode.NOT_FOUND
    finally:
        channel.close()
        server.registry.stop()
        server.stop(None)


def statuses(channel, name="double"):
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = name
    stub = model_service_pb2_grpc.ModelServiceStub(channel)
    return [(s.version, s.state, s.status.error_message) for s in stub.GetModelStatus(request, timeout=10)
            .model_version_status]


def test_broken_entries_never_stop_start_up_and_the_valid_version_serves(tmp_path):
    save_scale(tmp_path / "double" / "1", 1.0)
    dangling_copy(tmp_path / "double" / "1", tmp_path / "double" / "2")  # newest, cannot load
    os.symlink("/nonexistent", tmp_path / "double" / "1" / "stray-link")  # a dangling link in a good version
    os.symlink("/nonexistent", tmp_path / "double" / "3")  # a dangling link as a version
    (tmp_path / "double" / "4").write_text("a file, not a version")
    for name in ("-1", "99999999999999999999", "junk", "5"):  # 5: a directory without saved_model.pb
        (tmp_path / "double" / name).mkdir()
    server, channel, _ = start(tmp_path, ["double"])
    try:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        assert stub.Predict(predict_request(), timeout=10).model_spec.version.value == 1
        (two, state, error), one = statuses(channel)
        assert (two, state, one) == (2, END, (1, AVAILABLE, "")) and "Failed to load" in error
    finally:
        channel.close()
        server.registry.stop()
        server.stop(None)


def test_one_models_broken_version_never_stops_the_other_updates(tmp_path):
    save_scale(tmp_path / "a" / "1", 1.0)
    save_scale(tmp_path / "b" / "1", 1.0)
    server, channel, _ = start(tmp_path, ["a", "b"])
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    try:
        dangling_copy(tmp_path / "a" / "1", tmp_path / "a" / "2")
        os.symlink("/nonexistent", tmp_path / "a" / "3")
        save_scale(tmp_path / "b" / "2", 3.0)
        wait_for(lambda: stub.Predict(predict_request(name="b"), timeout=10).model_spec.version.value == 2)
        wait_for(lambda: [v for v, _, _ in statuses(channel, "a")] == [2, 1])
        assert [(v, s) for v, s, _ in statuses(channel, "a")] == [(2, END), (1, AVAILABLE)]
        assert stub.Predict(predict_request(name="a"), timeout=10).model_spec.version.value == 1
        save_scale(tmp_path / "a" / "5", 5.0)  # and a's own updates go on
        wait_for(lambda: stub.Predict(predict_request(name="a"), timeout=10).model_spec.version.value == 5)
    finally:
        channel.close()
        server.registry.stop()
        server.stop(None)


def test_a_refused_reload_changes_nothing_and_updates_go_on(tmp_path):
    save_scale(tmp_path / "double" / "1", 1.0)
    server, channel, _ = start(tmp_path, ["double"], allow_reload=True)
    models = model_service_pb2_grpc.ModelServiceStub(channel)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)

    def reload(**base_paths):
        config = model_server_config_pb2.ModelServerConfig()
        for name, path in {"double": str(tmp_path / "double"), **base_paths}.items():
            config.model_config_list.config.add(name=name, base_path=path, model_platform="tensorflow")
        request = model_management_pb2.ReloadConfigRequest(config=config)
        return lambda: models.HandleReloadConfigRequest(request, timeout=60)
    try:
        assert code_of(reload(host="/proc")) == grpc.StatusCode.UNKNOWN  # process ids are no versions
        assert "host" not in server.registry.readiness() and health_of(channel) == "SERVING"
        assert [(v, s) for v, s, _ in statuses(channel)] == [(1, AVAILABLE)]
        assert code_of(lambda: statuses(channel, "host")) == grpc.StatusCode.NOT_FOUND
        save_scale(tmp_path / "double" / "2", 2.0)  # polling still works
        wait_for(lambda: stub.Predict(predict_request(), timeout=10).model_spec.version.value == 2)
    finally:
        channel.close()
        server.registry.stop()
        server.stop(None)
