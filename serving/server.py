"""A TF-Serving-compatible gRPC server for the pushed SavedModels.

Implements TF Serving's PredictionService (Predict, GetModelMetadata) and ModelService
(GetModelStatus) over the models of a TF Serving `model_config_list` file, serving the
newest version directory of each model. It imports ScaNN's ops, which stock TF Serving
lacks, so it serves the ScaNN retrieval model too. A client cannot tell it from TF Serving.

    python -m serving.server --model_config_file serving/models.config --port 8500

Relative base_paths in the config file are read relative to the file's directory.
"""
import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
from concurrent import futures
from typing import Dict, Optional

import grpc
import scann  # noqa: F401  registers ScaNN's TF ops before any model loads
import tensorflow as tf
from google.protobuf import text_format
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2, model_pb2,
                                     model_service_pb2_grpc, predict_pb2, prediction_service_pb2_grpc)
from tensorflow_serving.config import model_server_config_pb2

DEFAULT_SIGNATURE = "serving_default"
SIGNATURE_DEF_FIELD = "signature_def"


class ServableError(Exception):
    """A request the server answers with a gRPC status code instead of a result."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code


class Servable:
    """One loaded version of one model."""

    def __init__(self, name: str, version: int, path: str):
        self.name, self.version, self.path = name, version, path
        self.model = tf.saved_model.load(path)
        self.signatures = dict(self.model.signatures)

    def signature(self, name: str):
        if name not in self.signatures:
            raise ServableError(grpc.StatusCode.FAILED_PRECONDITION,
                                f"Serving signature name: \"{name}\" not found in signature def")
        return self.signatures[name]


def read_config(path: str) -> Dict[str, str]:
    """{model name: absolute base path} from a TF Serving model_config_list file."""
    config = model_server_config_pb2.ModelServerConfig()
    with open(path) as f:
        text_format.Parse(f.read(), config)
    base = os.path.dirname(os.path.abspath(path))
    return {m.name: os.path.join(base, m.base_path) for m in config.model_config_list.config}


def write_config(path: str, models: Dict[str, str]) -> str:
    """Writes a model_config_list file serving {name: base_path}; returns `path`."""
    config = model_server_config_pb2.ModelServerConfig()
    for name, base_path in models.items():
        config.model_config_list.config.add(name=name, base_path=base_path, model_platform="tensorflow")
    with open(path, "w") as f:
        f.write(text_format.MessageToString(config))
    return path


def latest_version(base_path: str) -> Optional[int]:
    """The highest numeric version directory under `base_path` holding a SavedModel."""
    versions = [int(d) for d in os.listdir(base_path) if d.isdigit()
                and os.path.exists(os.path.join(base_path, d, "saved_model.pb"))] \
        if os.path.isdir(base_path) else []
    return max(versions, default=None)


class ModelServer(prediction_service_pb2_grpc.PredictionServiceServicer,
                  model_service_pb2_grpc.ModelServiceServicer):
    """Holds the newest version of each configured model and answers for it."""

    def __init__(self, models: Dict[str, str]):
        self.servables: Dict[str, Servable] = {}
        for name, base_path in models.items():
            version = latest_version(base_path)
            if version is None:
                raise FileNotFoundError(f"Model {name!r}: no version directory with a saved_model.pb "
                                        f"under {base_path}; run the pipeline to push one.")
            self.servables[name] = Servable(name, version, os.path.join(base_path, str(version)))
            print(f"Loaded model {name} version {version} from {base_path}", flush=True)

    def _servable(self, spec) -> Servable:
        if not spec.name:
            raise ServableError(grpc.StatusCode.INVALID_ARGUMENT, "Missing ModelSpec name")
        servable = self.servables.get(spec.name)
        if servable is None:
            raise ServableError(grpc.StatusCode.NOT_FOUND,
                                f"Servable not found for request: Latest({spec.name})")
        if spec.HasField("version") and spec.version.value != servable.version:
            raise ServableError(grpc.StatusCode.NOT_FOUND,
                                f"Servable not found for request: Specific({spec.name}, {spec.version.value})")
        return servable

    def _answer(self, context, method, request):
        try:
            return method(request)
        except ServableError as error:
            context.abort(error.code, str(error))
        except (tf.errors.InvalidArgumentError, ValueError, TypeError) as error:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error).splitlines()[0])

    def Predict(self, request, context):
        return self._answer(context, self._predict, request)

    def _predict(self, request):
        servable = self._servable(request.model_spec)
        signature_name = request.model_spec.signature_name or DEFAULT_SIGNATURE
        function = servable.signature(signature_name)
        expected = function.structured_input_signature[1]
        if set(request.inputs) != set(expected):
            raise ServableError(grpc.StatusCode.INVALID_ARGUMENT,
                                f"Expected inputs {sorted(expected)}, got {sorted(request.inputs)}")
        inputs = {key: tf.constant(tf.make_ndarray(proto), dtype=expected[key].dtype)
                  for key, proto in request.inputs.items()}
        outputs = function(**inputs)
        keys = list(request.output_filter) or list(outputs)
        unknown = [key for key in keys if key not in outputs]
        if unknown:
            raise ServableError(grpc.StatusCode.INVALID_ARGUMENT, f"output tensor alias not found in signature: {unknown[0]}")
        response = predict_pb2.PredictResponse()
        response.model_spec.CopyFrom(self._spec(servable, signature_name))
        for key in keys:
            response.outputs[key].CopyFrom(tf.make_tensor_proto(outputs[key].numpy()))
        return response

    def GetModelMetadata(self, request, context):
        return self._answer(context, self._metadata, request)

    def _metadata(self, request):
        servable = self._servable(request.model_spec)
        if list(request.metadata_field) != [SIGNATURE_DEF_FIELD]:
            raise ServableError(grpc.StatusCode.INVALID_ARGUMENT,
                                f"Metadata field(s) {list(request.metadata_field)} not supported; "
                                f"ask for [{SIGNATURE_DEF_FIELD!r}]")
        saved_model = saved_model_pb2.SavedModel()
        with open(os.path.join(servable.path, "saved_model.pb"), "rb") as f:
            saved_model.ParseFromString(f.read())
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for name, definition in saved_model.meta_graphs[0].signature_def.items():
            if name in servable.signatures:
                signature_map.signature_def[name].CopyFrom(definition)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.CopyFrom(self._spec(servable))
        response.metadata[SIGNATURE_DEF_FIELD].Pack(signature_map)
        return response

    def GetModelStatus(self, request, context):
        return self._answer(context, self._status, request)

    def _status(self, request):
        servable = self._servable(request.model_spec)
        response = get_model_status_pb2.GetModelStatusResponse()
        status = response.model_version_status.add()
        status.version = servable.version
        status.state = get_model_status_pb2.ModelVersionStatus.AVAILABLE
        return response

    @staticmethod
    def _spec(servable: Servable, signature_name: str = ""):
        spec = model_pb2.ModelSpec(name=servable.name, signature_name=signature_name)
        spec.version.value = servable.version
        return spec


def serve(models: Dict[str, str], port: int, host: str = "127.0.0.1", workers: int = 4) -> grpc.Server:
    """Loads the models and starts serving them; returns the started grpc.Server."""
    model_server = ModelServer(models)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(model_server, server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(model_server, server)
    if not server.add_insecure_port(f"{host}:{port}"):
        raise OSError(f"Cannot listen on {host}:{port}; is the port taken?")
    server.start()
    return server


def spawn(model_config_file: str, port: int) -> subprocess.Popen:
    """Starts this server in a child process on 127.0.0.1:`port`; the caller stops it."""
    return subprocess.Popen([sys.executable, "-m", "serving.server", "--model_config_file",
                             model_config_file, "--port", str(port)])


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve pushed models over TF Serving's gRPC API.")
    parser.add_argument("--model_config_file", required=True, help="TF Serving model_config_list file")
    parser.add_argument("--port", type=int, default=8500, help="gRPC port")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    args = parser.parse_args()
    try:
        server = serve(read_config(args.model_config_file), args.port, args.host)
    except (FileNotFoundError, OSError, text_format.ParseError) as error:
        sys.exit(f"serving.server: {error}")
    print(f"Serving on {args.host}:{args.port}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.stop(grace=2).wait()


if __name__ == "__main__":
    main()
