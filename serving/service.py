"""TF Serving's gRPC API over a ModelRegistry: the servicer behind serving/server.py.

TF Serving 2.16's PredictionService (Classify and Regress, on tf.Examples, are left to the
generated servicer: UNIMPLEMENTED) and ModelService with its status codes
(tests/test_serving_parity.py holds the table). Inference calls pass an `Admission`
limit; health, status and metadata calls never wait behind them.
"""
import contextlib
import dataclasses
import math
import threading
from typing import Optional

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
    model_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from serving.errors import ServableError, status_of
from serving.protos import tensor_pb2
from serving.registry import ModelRegistry, Servable
from serving.tensors import dtype_name, from_proto, to_proto

SIGNATURE_DEF_FIELD = "signature_def"
RELOAD_FLAG = "--allow_reload_config"
EXCLUDE_INPUT = "exclude"  # the input --max_exclusions limits


def _spec(servable: Servable, signature_name: str = "") -> model_pb2.ModelSpec:
    return model_pb2.ModelSpec(name=servable.name, signature_name=signature_name, version={"value": servable.version})


def _tensor(array, dtype) -> tf.Tensor:
    """A constant of `array`; strings from a nested list, which TensorFlow converts faster than an
    object array (a list keeps the shape only where no dimension is 0)."""
    return tf.constant(array.tolist() if array.dtype == object and array.size else array, dtype)


@dataclasses.dataclass
class Limits:
    """Per-request limits: rows in a batch, elements in one tensor, non-empty strings in `exclude`."""
    max_batch_size: int = 10_000
    max_tensor_elements: int = 10_000_000
    max_exclusions: int = 10_000


def to_array(key: str, proto: tensor_pb2.TensorProto, spec, limits: Limits) -> np.ndarray:
    """A request's input as an array for `spec` (a tf.TensorSpec), or a ServableError.

    Wrong dtype, shape or contents: INVALID_ARGUMENT. More rows than --max_batch_size or
    elements than the tensor limit: RESOURCE_EXHAUSTED. An `exclude` input with more
    non-empty strings than --max_exclusions: INVALID_ARGUMENT.
    """
    def error(message, code=grpc.StatusCode.INVALID_ARGUMENT):
        return ServableError(code, f"input {key!r}: {message}")
    wanted = spec.dtype.as_datatype_enum
    if proto.dtype != wanted:
        raise error(f"Expects arg to be {dtype_name(wanted)} but {dtype_name(proto.dtype)} is provided")
    dims = [d.size for d in proto.tensor_shape.dim]
    if proto.tensor_shape.unknown_rank or any(d < 0 for d in dims):
        raise error(f"needs a fully defined shape, got {dims}")
    if math.prod(dims) > limits.max_tensor_elements:
        raise error(f"{math.prod(dims)} elements, more than the server's limit {limits.max_tensor_elements}",
                    grpc.StatusCode.RESOURCE_EXHAUSTED)
    if dims and dims[0] > limits.max_batch_size:
        raise error(f"batch of {dims[0]} is larger than the server's --max_batch_size {limits.max_batch_size}; "
                    "send it in smaller requests", grpc.StatusCode.RESOURCE_EXHAUSTED)
    if not spec.shape.is_compatible_with(dims):
        raise error(f"shape {dims} is not compatible with the signature's {spec.shape}")
    try:
        array = from_proto(proto)
    except ValueError as parse_error:
        raise error(f"tensor parsing error: {parse_error}") from parse_error
    if key == EXCLUDE_INPUT and array.dtype == object:
        count = int(np.count_nonzero(array.ravel() != b""))
        if count > limits.max_exclusions:
            raise error(f"{count} exclusions, more than the server's --max_exclusions {limits.max_exclusions}; "
                        "send fewer (or start the server with a larger --max_exclusions)")
    return array


class Admission:
    """At most `running` inference calls at once and `waiting` more queued; RESOURCE_EXHAUSTED past that.

    Only Predict passes through here: health and model status calls answer whatever the queue holds.
    """

    def __init__(self, running: int, waiting: int):
        self.running, self.limit = running, running + waiting
        self._slots = threading.Semaphore(running)
        self._lock, self._admitted = threading.Lock(), 0

    @contextlib.contextmanager
    def __call__(self, context):
        with self._lock:
            if self._admitted >= self.limit:
                raise ServableError(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                    f"Server busy: {self.running} inference requests running and "
                                    f"{self.limit - self.running} waiting (see --grpc_max_threads); retry with backoff")
            self._admitted += 1
        try:
            remaining = context.time_remaining()
            if not self._slots.acquire(timeout=None if remaining is None else max(remaining, 0.0)):
                raise ServableError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline exceeded waiting for a worker")
            try:
                yield
            finally:
                self._slots.release()
        finally:
            with self._lock:
                self._admitted -= 1


class ModelServer(prediction_service_pb2_grpc.PredictionServiceServicer,
                  model_service_pb2_grpc.ModelServiceServicer):
    """Answers TF Serving's gRPC API from a ModelRegistry."""

    def __init__(self, registry: ModelRegistry, limits: Optional[Limits] = None,
                 admission: Optional[Admission] = None, allow_reload: bool = False):
        self.registry, self.limits = registry, limits or Limits()
        self.admission, self.allow_reload = admission, allow_reload

    def _answer(self, context, method, request, inference: bool = False):
        try:
            with self.admission(context) if inference and self.admission else contextlib.nullcontext():
                remaining = context.time_remaining()
                if remaining is not None and remaining <= 0:
                    raise ServableError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline exceeded before the request ran")
                return method(request)
        except Exception as error:  # every failure becomes a status code, as TF Serving's
            code, message = status_of(error)
            context.abort(code, message)

    def Predict(self, request, context):
        return self._answer(context, self._predict, request, inference=True)

    def _predict(self, request):
        servable = self.registry.servable(request.model_spec)
        name = request.model_spec.signature_name or "serving_default"
        function = servable.signature(name)
        expected = function.structured_input_signature[1]
        if set(request.inputs) != set(expected):
            raise ServableError(grpc.StatusCode.INVALID_ARGUMENT,
                                f"input size does not match signature: {len(request.inputs)}!={len(expected)}. "
                                f"Sent extra: {sorted(set(request.inputs) - set(expected))}. "
                                f"Missing but required: {sorted(set(expected) - set(request.inputs))}.")
        outputs_known = sorted(function.structured_outputs)
        for i, key in enumerate(request.output_filter):
            if key not in outputs_known:
                raise ServableError(grpc.StatusCode.INVALID_ARGUMENT, f"output tensor alias not found in "
                                    f"signature: {key} Outputs expected to be in the set {outputs_known}.")
            if key in request.output_filter[:i]:
                raise ServableError(grpc.StatusCode.INVALID_ARGUMENT, f"duplicate output tensor alias: {key}")
        outputs = function(**{key: _tensor(to_array(key, proto, expected[key], self.limits), expected[key].dtype)
                              for key, proto in request.inputs.items()})
        response = predict_pb2.PredictResponse(model_spec=_spec(servable, name))
        for key in list(request.output_filter) or list(outputs):
            to_proto(outputs[key].numpy(), response.outputs[key])
        return response

    def GetModelMetadata(self, request, context):
        return self._answer(context, self._metadata, request)

    def _metadata(self, request):
        if not request.HasField("model_spec"):
            raise ServableError(grpc.StatusCode.INVALID_ARGUMENT, "Missing ModelSpec")
        if not request.metadata_field:
            raise ServableError(grpc.StatusCode.INVALID_ARGUMENT,
                                "GetModelMetadataRequest must specify at least one metadata_field")
        for field in request.metadata_field:
            if field != SIGNATURE_DEF_FIELD:
                raise ServableError(grpc.StatusCode.INVALID_ARGUMENT, f"Metadata field {field} is not supported")
        servable = self.registry.servable(request.model_spec)
        signature_map = get_model_metadata_pb2.SignatureDefMap(signature_def=servable.signature_defs)
        response = get_model_metadata_pb2.GetModelMetadataResponse(model_spec=_spec(servable))
        response.metadata[SIGNATURE_DEF_FIELD].Pack(signature_map)
        return response

    def GetModelStatus(self, request, context):
        return self._answer(context, self._status, request)

    def _status(self, request):
        if not request.HasField("model_spec"):
            raise ServableError(grpc.StatusCode.INVALID_ARGUMENT, "Missing ModelSpec")
        spec = request.model_spec  # as TF Serving: a version label asks about every version
        version = spec.version.value if spec.WhichOneof("version_choice") == "version" else None
        response = get_model_status_pb2.GetModelStatusResponse()
        for number, state, message, code in self.registry.status(spec.name, version):
            status = response.model_version_status.add(version=number, state=state)
            status.status.error_code, status.status.error_message = code, message
        return response

    def HandleReloadConfigRequest(self, request, context):
        return self._answer(context, self._reload, request)

    def _reload(self, request):
        if not self.allow_reload:
            raise ServableError(grpc.StatusCode.PERMISSION_DENIED,
                                f"HandleReloadConfigRequest is disabled on this server: it would let any client "
                                f"choose which files to load; start the server with {RELOAD_FLAG} to allow it")
        self.registry.reload(request.config)
        return model_management_pb2.ReloadConfigResponse()
