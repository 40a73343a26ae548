"""A TF-Serving-compatible gRPC server for the pushed SavedModels.

Implements TF Serving 2.16's PredictionService (Predict, Classify, Regress,
GetModelMetadata) and ModelService (GetModelStatus, HandleReloadConfigRequest) with its
status codes, plus the standard gRPC health service, over the models of a TF Serving
`model_config_list` file (version policies and labels included). It polls the base paths
for new versions and swaps them in while serving (serving/registry.py). It imports
ScaNN's ops, which stock TF Serving lacks, so it serves the ScaNN retrieval model too.

    python -m serving.server --model_config_file serving/models.config --port 8500

Relative base_paths in the config file are read relative to the file's directory.
"""
import argparse
import signal
import socket
import subprocess
import sys
import threading
from concurrent import futures
from typing import Optional, Sequence, Tuple

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import text_format
from tensorflow_serving.apis import (classification_pb2, get_model_metadata_pb2, get_model_status_pb2,
                                     model_management_pb2, model_pb2, model_service_pb2_grpc, predict_pb2,
                                     prediction_service_pb2_grpc, regression_pb2)

from serving import health
from serving.batching import Batcher
from serving.tensors import Limits, to_array, to_proto
from serving.registry import ModelRegistry, Servable, ServableError, read_config, write_config  # noqa: F401

DEFAULT_SIGNATURE = "serving_default"
SIGNATURE_DEF_FIELD = "signature_def"


def _spec(servable: Servable, signature_name: str = ""):
    spec = model_pb2.ModelSpec(name=servable.name, signature_name=signature_name)
    spec.version.value = servable.version
    return spec


class ModelServer(prediction_service_pb2_grpc.PredictionServiceServicer,
                  model_service_pb2_grpc.ModelServiceServicer):
    """Answers TF Serving's gRPC API from a ModelRegistry."""

    def __init__(self, registry: ModelRegistry, limits: Optional[Limits] = None, batcher: Optional[Batcher] = None):
        self.registry, self.limits, self.batcher = registry, limits or Limits(), batcher

    def _answer(self, context, method, request):
        if context.time_remaining() is not None and context.time_remaining() <= 0:
            context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline exceeded before the request ran")
        try:
            return method(request)
        except ServableError as error:
            context.abort(error.code, str(error))
        except (tf.errors.InvalidArgumentError, ValueError, TypeError) as error:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error).splitlines()[0])
        except tf.errors.OpError as error:
            context.abort(grpc.StatusCode.INTERNAL, str(error).splitlines()[0])

    def _signature(self, spec):
        servable = self.registry.servable(spec)
        name = spec.signature_name or DEFAULT_SIGNATURE
        return servable, name, *servable.signature(name)

    # ---- PredictionService ------------------------------------------------------------------
    def Predict(self, request, context):
        return self._answer(context, self._predict, request)

    def _predict(self, request):
        servable, name, function, _ = self._signature(request.model_spec)
        expected = function.structured_input_signature[1]
        if set(request.inputs) != set(expected):
            raise ServableError(grpc.StatusCode.INVALID_ARGUMENT,
                                f"input size does not match signature: {len(request.inputs)}!={len(expected)}. "
                                f"Sent extra: {sorted(set(request.inputs) - set(expected))}. "
                                f"Missing but required: {sorted(set(expected) - set(request.inputs))}.")
        inputs = {key: to_array(key, proto, expected[key], self.limits) for key, proto in request.inputs.items()}

        def call(arrays):
            tensors = {key: tf.constant(value, dtype=expected[key].dtype) for key, value in arrays.items()}
            return {key: value.numpy() for key, value in function(**tensors).items()}
        batchable = self.batcher and all(spec.shape.rank and spec.shape[0] is None for spec in expected.values())
        outputs = self.batcher.run((id(servable), name), call, inputs) if batchable else call(inputs)
        keys = list(request.output_filter) or list(outputs)
        unknown = [key for key in keys if key not in outputs]
        if unknown:
            raise ServableError(grpc.StatusCode.INVALID_ARGUMENT,
                                f"output tensor alias not found in signature: {unknown[0]}")
        response = predict_pb2.PredictResponse(model_spec=_spec(servable, name))
        for key in keys:
            response.outputs[key].CopyFrom(to_proto(outputs[key]))
        return response

    def Classify(self, request, context):
        return self._answer(context, lambda r: self._infer(r, "classify"), request)

    def Regress(self, request, context):
        return self._answer(context, lambda r: self._infer(r, "regress"), request)

    def _infer(self, request, kind: str):
        """Classify or Regress: tf.Examples in, through a classify / regress signature."""
        servable, name, function, definition = self._signature(request.model_spec)
        method = f"tensorflow/serving/{kind}"
        if definition.method_name != method:
            raise ServableError(grpc.StatusCode.FAILED_PRECONDITION, f"Expected {kind} signature method_name "
                                f"to be {method}. Was: {definition.method_name}")
        examples = self._examples(request.input)
        (key,) = function.structured_input_signature[1]
        outputs = function(**{key: tf.constant(examples, tf.string)})
        if kind == "regress":
            values = outputs["outputs"].numpy().reshape(len(examples))
            response = regression_pb2.RegressionResponse(model_spec=_spec(servable, name))
            response.result.regressions.extend(regression_pb2.Regression(value=v) for v in values)
            return response
        scores = outputs["scores"].numpy() if "scores" in outputs else None
        classes = outputs["classes"].numpy() if "classes" in outputs else None
        response = classification_pb2.ClassificationResponse(model_spec=_spec(servable, name))
        for row in range(len(examples)):
            result = response.result.classifications.add()
            for column in range((scores if scores is not None else classes).shape[1]):
                result.classes.add(label=classes[row, column].decode() if classes is not None else "",
                                   score=scores[row, column] if scores is not None else 0.0)
        return response

    def _examples(self, input_proto) -> Sequence[bytes]:
        kind = input_proto.WhichOneof("kind")
        if kind == "example_list":
            examples = [e.SerializeToString() for e in input_proto.example_list.examples]
        elif kind == "example_list_with_context":
            lists = input_proto.example_list_with_context
            examples = []
            for example in lists.examples:
                merged = tf.train.Example()
                merged.CopyFrom(lists.context)
                merged.MergeFrom(example)
                examples.append(merged.SerializeToString())
        else:
            raise ServableError(grpc.StatusCode.INVALID_ARGUMENT, "Input is empty")
        if not examples or len(examples) > self.limits.max_batch_size:
            raise ServableError(grpc.StatusCode.INVALID_ARGUMENT,
                                f"Input has {len(examples)} examples; send 1 to {self.limits.max_batch_size}")
        return examples

    def GetModelMetadata(self, request, context):
        return self._answer(context, self._metadata, request)

    def _metadata(self, request):
        servable = self.registry.servable(request.model_spec)
        if not request.metadata_field:
            raise ServableError(grpc.StatusCode.INVALID_ARGUMENT,
                                "GetModelMetadataRequest must specify at least one metadata_field")
        for field in request.metadata_field:
            if field != SIGNATURE_DEF_FIELD:
                raise ServableError(grpc.StatusCode.INVALID_ARGUMENT, f"Metadata field {field} is not supported")
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for name, definition in servable.signature_defs.items():
            signature_map.signature_def[name].CopyFrom(definition)
        response = get_model_metadata_pb2.GetModelMetadataResponse(model_spec=_spec(servable))
        response.metadata[SIGNATURE_DEF_FIELD].Pack(signature_map)
        return response

    # ---- ModelService --------------------------------------------------------------------------
    def GetModelStatus(self, request, context):
        return self._answer(context, self._status, request)

    def _status(self, request):
        spec = request.model_spec
        if spec.WhichOneof("version_choice") == "version_label":
            version = self.registry.servable(spec).version
        else:
            version = spec.version.value if spec.HasField("version") else None
        response = get_model_status_pb2.GetModelStatusResponse()
        for number, state, message, code in self.registry.status(spec.name, version):
            status = response.model_version_status.add(version=number, state=state)
            status.status.error_code, status.status.error_message = code, message
        return response

    def HandleReloadConfigRequest(self, request, context):
        return self._answer(context, self._reload, request)

    def _reload(self, request):
        self.registry.reload(request.config)
        return model_management_pb2.ReloadConfigResponse()


def serve(model_config_file: str, port: int, host: str = "127.0.0.1", workers: int = 4,
          poll_seconds: float = 1.0, config_poll_seconds: float = 0.0, max_request_bytes: int = 64 << 20,
          limits: Optional[Limits] = None, tls: Optional[Tuple[bytes, bytes]] = None,
          batcher: Optional[Batcher] = None) -> grpc.Server:
    """Loads the models and starts serving them; returns the started grpc.Server.

    Args:
      model_config_file: TF Serving model_config_list file.
      port, host: where to listen (loopback unless told).
      workers: request threads; at most 4x as many requests wait, the rest get RESOURCE_EXHAUSTED.
      poll_seconds: how often the base paths are rescanned for versions (0: never).
      config_poll_seconds: how often the config file is re-read (0: never).
      max_request_bytes: larger requests get RESOURCE_EXHAUSTED.
      limits: batch and tensor size limits.
      tls: (PEM certificate chain, PEM private key) to serve TLS only.
      batcher: merges concurrent Predict calls of a signature (None: each runs alone).
    """
    registry = ModelRegistry(read_config(model_config_file))
    model_server = ModelServer(registry, limits, batcher)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers), maximum_concurrent_rpcs=5 * workers,
                         options=[("grpc.max_receive_message_length", max_request_bytes)])
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(model_server, server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(model_server, server)
    health.add_health_service(server, registry.ready)
    address = f"{host}:{port}"
    bound = (server.add_secure_port(address, grpc.ssl_server_credentials([(tls[1], tls[0])])) if tls
             else server.add_insecure_port(address))
    if not bound:
        raise OSError(f"Cannot listen on {address}; is the port taken?")
    server.start()
    if poll_seconds > 0:
        registry.watch(poll_seconds, model_config_file, config_poll_seconds)
    server.registry = registry  # for tests and callers that stop polling
    return server


def spawn(model_config_file: str, port: int, *flags: str) -> subprocess.Popen:
    """Starts this server in a child process on 127.0.0.1:`port`; the caller stops it."""
    return subprocess.Popen([sys.executable, "-m", "serving.server", "--model_config_file",
                             model_config_file, "--port", str(port), *flags])


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
    parser.add_argument("--file_system_poll_wait_seconds", type=float, default=1.0,
                        help="seconds between scans of the base paths for new versions (0: never)")
    parser.add_argument("--model_config_file_poll_wait_seconds", type=float, default=0.0,
                        help="seconds between re-reads of the config file (0: never)")
    parser.add_argument("--grpc_max_threads", type=int, default=4, help="request worker threads")
    parser.add_argument("--max_request_bytes", type=int, default=64 << 20, help="largest request accepted")
    parser.add_argument("--max_batch_size", type=int, default=10_000, help="most rows in one request")
    parser.add_argument("--tensorflow_intra_op_parallelism", type=int, default=0,
                        help="threads one TensorFlow op may use (0: TensorFlow's choice)")
    parser.add_argument("--tensorflow_inter_op_parallelism", type=int, default=0,
                        help="TensorFlow ops run at once per call (0: TensorFlow's choice)")
    parser.add_argument("--enable_batching", action="store_true", help="merge concurrent Predict calls")
    parser.add_argument("--batch_timeout_micros", type=int, default=0, help="how long a batch waits to fill")
    parser.add_argument("--ssl_cert_file", help="PEM certificate chain: serve TLS (needs --ssl_key_file)")
    parser.add_argument("--ssl_key_file", help="PEM private key of --ssl_cert_file")
    args = parser.parse_args()
    if bool(args.ssl_cert_file) != bool(args.ssl_key_file):
        parser.error("--ssl_cert_file and --ssl_key_file go together")
    tf.config.threading.set_intra_op_parallelism_threads(args.tensorflow_intra_op_parallelism)
    tf.config.threading.set_inter_op_parallelism_threads(args.tensorflow_inter_op_parallelism)
    tls = (open(args.ssl_cert_file, "rb").read(), open(args.ssl_key_file, "rb").read()) if args.ssl_cert_file else None
    try:
        server = serve(args.model_config_file, args.port, args.host, args.grpc_max_threads,
                       args.file_system_poll_wait_seconds, args.model_config_file_poll_wait_seconds,
                       args.max_request_bytes, Limits(args.max_batch_size), tls,
                       Batcher(args.batch_timeout_micros / 1e6, args.max_batch_size) if args.enable_batching else None)
    except (FileNotFoundError, OSError, text_format.ParseError, ServableError) as error:
        sys.exit(f"serving.server: {error}")
    print(f"Serving on {args.host}:{args.port}{' (TLS)' if tls else ''}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.registry.stop()
    server.stop(grace=2).wait()


if __name__ == "__main__":
    main()
