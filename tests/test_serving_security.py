"""The server cannot be turned against its host: HandleReloadConfigRequest is off unless
--allow_reload_config, and --model_base_path_root confines every base path and version.
(Client-certificate verification: tests/test_client.py.)"""
import os

import grpc
import pytest
from serving_fakes import predict_request, save_scale
from tensorflow_serving.apis import model_management_pb2, model_service_pb2_grpc, prediction_service_pb2_grpc
from tensorflow_serving.config import model_server_config_pb2

from serving import server as S
from serving.config import read_config, write_config


def reload_request(**base_paths) -> model_management_pb2.ReloadConfigRequest:
    config = model_server_config_pb2.ModelServerConfig()
    for name, path in base_paths.items():
        config.model_config_list.config.add(name=name, base_path=str(path), model_platform="tensorflow")
    return model_management_pb2.ReloadConfigRequest(config=config)


@pytest.fixture
def tree(tmp_path):
    """root/double/1 (a model), root/double/2 -> outside/1 (a link out of the root), root/sneaky -> outside."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    save_scale(root / "double" / "1", 1.0)
    save_scale(outside / "1", 5.0)
    os.symlink(outside / "1", root / "double" / "2")
    os.symlink(outside, root / "sneaky")
    return root, outside


def start(config, **options):
    port = S.free_port()
    server = S.serve(config, port, poll_seconds=0, **options)
    return server, grpc.insecure_channel(f"127.0.0.1:{port}")


def test_reload_is_refused_unless_the_server_allows_it(tree, tmp_path):
    root, _ = tree
    server, channel = start(write_config(str(tmp_path / "models.config"), {"double": str(root / "double")}))
    try:
        models = model_service_pb2_grpc.ModelServiceStub(channel)
        with pytest.raises(grpc.RpcError) as error:
            models.HandleReloadConfigRequest(reload_request(double=root / "double", host="/proc"), timeout=30)
        assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "--allow_reload_config" in error.value.details()
        assert "host" not in server.registry.readiness()
    finally:
        channel.close()
        server.stop(None)


def test_base_paths_and_versions_must_resolve_under_the_root(tree, tmp_path):
    root, outside = tree
    config = write_config(str(tmp_path / "models.config"), {"double": str(root / "double")})
    server, channel = start(config, base_path_root=str(root), allow_reload=True)
    try:
        prediction = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        assert prediction.Predict(predict_request(), timeout=30).model_spec.version.value == 1  # 2 links out
        models = model_service_pb2_grpc.ModelServiceStub(channel)
        for path in (outside, root / "sneaky", "/proc", root / ".." / "outside"):
            with pytest.raises(grpc.RpcError) as error:
                models.HandleReloadConfigRequest(reload_request(double=root / "double", other=path), timeout=30)
            assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "outside --model_base_path_root" in error.value.details()
        assert "other" not in server.registry.readiness()
    finally:
        channel.close()
        server.stop(None)
    outside_config = write_config(str(tmp_path / "outside.config"), {"double": str(outside)})
    with pytest.raises(S.ServableError, match="outside --model_base_path_root"):
        S.ModelRegistry(read_config(outside_config), str(root))


def test_without_a_root_a_linked_version_serves(tree, tmp_path):
    root, _ = tree
    server, channel = start(write_config(str(tmp_path / "models.config"), {"double": str(root / "double")}))
    try:
        prediction = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        assert prediction.Predict(predict_request(), timeout=30).model_spec.version.value == 2
    finally:
        channel.close()
        server.stop(None)


@pytest.mark.parametrize("flags, message", [
    (["--ssl_client_ca_file", "ca.pem"], "--ssl_client_ca_file needs --ssl_cert_file"),
    (["--ssl_cert_file", "c.pem"], "--ssl_cert_file and --ssl_key_file go together"),
    (["--max_exclusions", "-1"], "--max_exclusions must be at least 0"),
    (["--grpc_max_threads", "0"], "--grpc_max_threads must be at least 1"),
])
def test_server_flag_errors(flags, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        S.parse_args(["--model_config_file", "m.config", *flags])
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_server_flag_defaults():
    args = S.parse_args(["--model_config_file", "m.config"])
    assert (args.allow_reload_config, args.model_base_path_root, args.max_exclusions) == (False, None, 10_000)
