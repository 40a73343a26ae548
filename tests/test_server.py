"""serving/server.py against TF Serving's documented behaviour, over real gRPC on loopback.

Models: `double` (y = factor * x, z = x + 1) at versions 1 (factor 1) and 3 (factor 2),
7 a truncated copy that cannot load, 8 an empty directory (no version). Every error code:
tests/test_serving_parity.py.
"""
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest
import tensorflow as tf
from serving_fakes import broken_copy, code_of, health_of, predict_request, save_scale
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    prediction_service_pb2_grpc,
)
from tensorflow_serving.config import file_system_storage_path_source_pb2, model_server_config_pb2

from serving import server as S
from serving.config import read_config, write_config

OK, INVALID, NOT_FOUND, PRECONDITION = (grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT,
                                        grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION)
AVAILABLE, END = get_model_status_pb2.ModelVersionStatus.AVAILABLE, get_model_status_pb2.ModelVersionStatus.END


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    base = tmp_path_factory.mktemp("models")
    (base / "double").mkdir()
    save_scale(base / "double" / "1", 1.0)
    save_scale(base / "double" / "3", 2.0)
    broken_copy(base / "double" / "3", base / "double" / "7", "truncated")
    (base / "double" / "8").mkdir()  # empty: not a version at all
    config = write_config(str(base / "models.config"), {"double": "double"})
    port = S.free_port()
    server = S.serve(config, port, poll_seconds=0, max_request_bytes=1 << 20, limits=S.Limits(max_batch_size=100),
                     allow_reload=True)
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield (prediction_service_pb2_grpc.PredictionServiceStub(channel), model_service_pb2_grpc.ModelServiceStub(channel),
           channel, base)
    channel.close()
    server.stop(None)


def predict(stub, **kwargs):
    return stub.Predict(predict_request(**kwargs), timeout=10)


def status(stub, name="double", version=None):
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = name
    if version is not None:
        request.model_spec.version.value = version
    return [(s.version, s.state) for s in stub.GetModelStatus(request, timeout=10).model_version_status]


def reload(stub, base, **policies):
    """Reloads a config serving `double` with the given ModelConfig fields."""
    config = model_server_config_pb2.ModelServerConfig()
    model = config.model_config_list.config.add(name="double", base_path=str(base / "double"),
                                                 model_platform="tensorflow", **policies)
    return stub.HandleReloadConfigRequest(model_management_pb2.ReloadConfigRequest(config=config), timeout=60), model


def test_predict_serves_the_newest_version_and_echoes_model_spec(served):
    response = predict(served[0])
    assert tf.make_ndarray(response.outputs["y"]).tolist() == [2.0, 5.0]
    assert tf.make_ndarray(response.outputs["z"]).tolist() == [2.0, 3.5]
    spec = response.model_spec
    assert (spec.name, spec.version.value, spec.signature_name) == ("double", 3, "serving_default")


def test_outputs_are_in_typed_fields_as_tf_serving_writes_them(served):
    y = predict(served[0]).outputs["y"]
    assert (list(y.float_val), y.tensor_content, [d.size for d in y.tensor_shape.dim]) == ([2.0, 5.0], b"", [2])


def test_output_filter(served):
    assert list(predict(served[0], output_filter=["z"]).outputs) == ["z"]
    assert code_of(lambda: predict(served[0], output_filter=["w"])) == INVALID


def test_metadata(served):
    def metadata(fields, name="double"):
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=fields)
        request.model_spec.name = name
        return served[0].GetModelMetadata(request, timeout=10)
    response = metadata(["signature_def"])
    signatures = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signatures)
    signature = signatures.signature_def["serving_default"]
    assert list(signature.inputs) == ["x"] and sorted(signature.outputs) == ["y", "z"]
    assert sorted(signatures.signature_def) == ["__saved_model_init_op", "serving_default"]  # as TF Serving
    assert (response.model_spec.name, response.model_spec.version.value) == ("double", 3)
    assert code_of(lambda: metadata([])) == INVALID
    assert code_of(lambda: metadata(["signature_def", "other"])) == INVALID
    assert code_of(lambda: metadata(["signature_def"], name="nope")) == NOT_FOUND


def test_model_status(served):
    models = served[1]
    assert status(models) == [(7, END), (3, AVAILABLE)]  # 7 failed to load; 1 is not wanted by latest-1
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "double"
    failed = models.GetModelStatus(request, timeout=10).model_version_status[0].status
    assert failed.error_code != 0 and "saved_model.pb" in failed.error_message
    assert status(models, version=3) == [(3, AVAILABLE)]
    assert code_of(lambda: status(models, version=1)) == NOT_FOUND
    assert code_of(lambda: status(models, name="nope")) == NOT_FOUND
    assert code_of(lambda: status(models, name="")) == NOT_FOUND


def test_version_policies_and_labels_through_reload(served):
    prediction, models, _, base = served
    policy = file_system_storage_path_source_pb2.FileSystemStoragePathSourceConfig.ServableVersionPolicy
    try:
        reload(models, base, model_version_policy=policy(all=policy.All()), version_labels={"stable": 1})
        assert status(models) == [(7, END), (3, AVAILABLE), (1, AVAILABLE)]
        assert predict(prediction, version=1).model_spec.version.value == 1
        assert tf.make_ndarray(predict(prediction, label="stable").outputs["y"]).tolist() == [1.0, 2.5]
        assert predict(prediction).model_spec.version.value == 3  # latest of those served

        reload(models, base, model_version_policy=policy(specific=policy.Specific(versions=[1])))
        assert status(models) == [(7, END), (3, END), (1, AVAILABLE)]
        assert predict(prediction).model_spec.version.value == 1
        assert code_of(lambda: predict(prediction, version=3)) == NOT_FOUND

        assert code_of(lambda: reload(models, base, version_labels={"canary": 1})) == PRECONDITION  # 1 unloaded
    finally:
        reload(models, base)
    assert predict(prediction).model_spec.version.value == 3
    relative = model_server_config_pb2.ModelServerConfig()
    relative.model_config_list.config.add(name="double", base_path="double")
    assert code_of(lambda: models.HandleReloadConfigRequest(
        model_management_pb2.ReloadConfigRequest(config=relative), timeout=10)) == INVALID


def test_concurrent_predictions_get_their_own_answers(served):
    inputs = [np.arange(i + 1, dtype=np.float32) for i in range(16)]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda x: predict(served[0], inputs={"x": x}), inputs))
    assert [tf.make_ndarray(a.outputs["y"]).tolist() for a in answers] == [(2 * x).tolist() for x in inputs]


def test_health_service(served):
    channel = served[2]
    assert health_of(channel) == "SERVING"
    assert health_of(channel, "double") == "SERVING"
    assert code_of(lambda: health_of(channel, "nope")) == NOT_FOUND


def test_expired_deadline_is_not_run():
    class Expired:
        def time_remaining(self):
            return 0.0

        def abort(self, code, message):
            raise RuntimeError(code)
    with pytest.raises(RuntimeError, match="DEADLINE_EXCEEDED"):
        S.ModelServer(registry=None)._answer(Expired(), lambda r: pytest.fail("ran"), None)


def test_missing_model_directory_is_a_clear_error(tmp_path):
    config = write_config(str(tmp_path / "models.config"), {"absent": "absent"})
    with pytest.raises(S.ServableError, match="not a directory.*run the pipeline"):
        S.ModelRegistry(read_config(config))
    (tmp_path / "empty").mkdir()
    config = write_config(str(tmp_path / "models.config"), {"empty": "empty"})
    with pytest.raises(S.ServableError, match="did not become available.*run the pipeline"):
        S.ModelRegistry(read_config(config))


def test_processes_share_one_port_each_answering_and_stop_together(tmp_path):
    import psutil

    from serving.client import RecommenderClient
    save_scale(tmp_path / "double" / "1", 2.0)
    config = write_config(str(tmp_path / "models.config"), {"double": "double"})
    port = S.free_port()
    parent = S.spawn(config, port, "--processes", "2", "--tensorflow_intra_op_parallelism", "1")
    try:
        def listening():
            pids = [parent.pid] + [c.pid for c in psutil.Process(parent.pid).children()]
            return [pid for pid in pids if any(c.status == psutil.CONN_LISTEN and c.laddr.port == port
                                               for c in psutil.Process(pid).net_connections("tcp"))]
        clients = [RecommenderClient(f"127.0.0.1:{port}", own_connection=True) for _ in range(8)]
        for client in clients:
            client.wait_until_ready(120)
        for _ in range(100):
            if len(listening()) == 2:
                break
            time.sleep(0.2)
        assert len(listening()) == 2  # two processes, each with the model loaded, bound to one port
        for i, client in enumerate(clients):  # eight connections, spread by the kernel
            answer = client.predictions.Predict(predict_request(inputs={"x": np.float32([i, 1])}), timeout=10)
            assert tf.make_ndarray(answer.outputs["y"]).tolist() == [2.0 * i, 2.0]
            client.close()
        child = psutil.Process(parent.pid).children()[0]
        parent.terminate()
        parent.wait(timeout=30)
        child.wait(timeout=30)  # the child stops with its parent
    finally:
        parent.kill()
