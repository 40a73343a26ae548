"""Every error case of serving/server.py against TF Serving 2.16.1's answer, as a table.

Each case names the TF Serving source file that decides TF Serving's status code
(paths in github.com/tensorflow/serving unless they start with tensorflow/, which are
TensorFlow's), TF Serving's code, and ours. They agree except where `differs` says why.
Models: `double` (y = factor * x, z = x + 1; versions 1 and 3 served as latest-1),
`topk` (values = top_k(x, k)).
"""
from typing import Callable, NamedTuple, Optional

import grpc
import numpy as np
import pytest
from serving_fakes import TopK, predict_request, save_module, save_scale
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    prediction_service_pb2_grpc,
    regression_pb2,
)
from tensorflow_serving.config import model_server_config_pb2

from serving import server as S
from serving.config import write_config

C = grpc.StatusCode
MANAGER = "tensorflow_serving/core/basic_manager.cc"  # GetUntypedServableHandle
CORE = "tensorflow_serving/model_servers/server_core.cc"
PREDICT = "tensorflow_serving/servables/tensorflow/predict_util.cc"
INPUTS = "tensorflow/cc/saved_model/util.cc"  # GetInputValues, called by predict_util.cc
SESSION = "predict_util.cc: Session::Run's own status, passed through"
TENSOR = "tensorflow/core/framework/tensor.cc"  # Tensor::FromProto
CLASSIFIER = "tensorflow_serving/servables/tensorflow/classifier.cc"
REGRESSOR = "tensorflow_serving/servables/tensorflow/regressor.cc"
METADATA = "tensorflow_serving/servables/tensorflow/get_model_metadata_impl.cc"
STATUS = "tensorflow_serving/model_servers/get_model_status_impl.cc"
MODEL_SERVICE = "tensorflow_serving/model_servers/model_service_impl.cc"
SERVER = "tensorflow_serving/model_servers/server.cc"  # gRPC's receive limit answers


class Stubs(NamedTuple):
    prediction: prediction_service_pb2_grpc.PredictionServiceStub
    models: model_service_pb2_grpc.ModelServiceStub
    locked: model_service_pb2_grpc.ModelServiceStub  # a server started without --allow_reload_config
    base: object


class Case(NamedTuple):
    name: str
    call: Callable[[Stubs], object]
    ours: grpc.StatusCode
    tf_serving: Optional[grpc.StatusCode]  # None: TF Serving has no such check
    source: str
    differs: str = ""  # why ours is not TF Serving's
    message: str = ""  # part of our message the case checks


@pytest.fixture(scope="module")
def stubs(tmp_path_factory):
    base = tmp_path_factory.mktemp("models")
    save_scale(base / "double" / "1", 1.0)
    save_scale(base / "double" / "3", 2.0)
    save_module(TopK(), base / "topk" / "1", serving_default=TopK().serve)
    (base / "empty" / "12").mkdir(parents=True)  # no saved_model.pb: no version
    config = write_config(str(base / "models.config"), {n: n for n in ("double", "topk")})
    ports = S.free_port(), S.free_port()
    servers = [S.serve(config, ports[0], poll_seconds=0, max_request_bytes=1 << 20,
                       limits=S.Limits(max_batch_size=100, max_exclusions=3), allow_reload=True),
               S.serve(config, ports[1], poll_seconds=0)]
    channels = [grpc.insecure_channel(f"127.0.0.1:{port}") for port in ports]
    yield Stubs(prediction_service_pb2_grpc.PredictionServiceStub(channels[0]),
                model_service_pb2_grpc.ModelServiceStub(channels[0]),
                model_service_pb2_grpc.ModelServiceStub(channels[1]), base)
    for channel, server in zip(channels, servers, strict=True):
        channel.close()
        server.stop(None)


def predict(**kwargs):
    return lambda s: s.prediction.Predict(predict_request(**kwargs), timeout=30)


def predict_proto(build):
    """Predict on `double` with input x built by `build(TensorProto)`."""
    def call(s):
        request = predict_request()
        proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT)
        build(proto)
        request.inputs["x"].CopyFrom(proto)
        return s.prediction.Predict(request, timeout=30)
    return call


def shaped(size, *, floats=(), content=b""):
    def build(proto):
        proto.tensor_shape.dim.add(size=size)
        proto.float_val.extend(floats)
        proto.tensor_content = content
    return build


def examples(kind):
    """Classify or Regress of one tf.Example on `double`."""
    request = (classification_pb2.ClassificationRequest() if kind == "classify" else regression_pb2.RegressionRequest())
    request.model_spec.name = "double"
    request.input.example_list.examples.add().features.feature["x"].float_list.value.append(0.25)
    return lambda s: getattr(s.prediction, kind.capitalize())(request, timeout=30)


def metadata(fields, name="double", spec=True):
    def call(s):
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=fields)
        if spec:
            request.model_spec.name = name
        return s.prediction.GetModelMetadata(request, timeout=30)
    return call


def status(name="double", version=None, label=None, spec=True):
    def call(s):
        request = get_model_status_pb2.GetModelStatusRequest()
        if spec:
            request.model_spec.name = name
        if version is not None:
            request.model_spec.version.value = version
        if label is not None:
            request.model_spec.version_label = label
        return s.models.GetModelStatus(request, timeout=30)
    return call


def reload(extra=None, stub="models", empty=False, labels=None):
    """Reloads the served config (with `labels` on `double`) plus an `extra` model: ModelConfig
    fields, its base_path a name under the models' directory unless `relative` is set."""
    def call(s):
        config = model_server_config_pb2.ModelServerConfig()
        for name in () if empty else ("double", "topk"):
            model = config.model_config_list.config.add(name=name, base_path=str(s.base / name),
                                                         model_platform="tensorflow")
            if name == "double":
                model.version_labels.update(labels or {})
        if extra:
            fields = dict(extra)
            if not fields.pop("relative", False):
                fields["base_path"] = str(s.base / fields["base_path"])
            config.model_config_list.config.add(**fields)
        request = model_management_pb2.ReloadConfigRequest(config=config)
        return getattr(s, stub).HandleReloadConfigRequest(request, timeout=60)
    return call


TOPK = {"x": np.array([3.0, 1.0], np.float32), "k": np.array(-1, np.int32)}
TABLE = [
    # ---- Predict
    Case("unknown model", predict(name="nope"), C.NOT_FOUND, C.NOT_FOUND, MANAGER),
    Case("version on disk, not served by latest-1", predict(version=1), C.NOT_FOUND, C.NOT_FOUND, MANAGER),
    Case("no model name", predict(name=""), C.INVALID_ARGUMENT, C.INVALID_ARGUMENT, CORE),
    Case("unknown version label", predict(label="stable"), C.INVALID_ARGUMENT, C.INVALID_ARGUMENT, CORE),
    Case("unknown signature", predict(signature="other"), C.FAILED_PRECONDITION, C.FAILED_PRECONDITION, PREDICT),
    Case("missing input", predict(inputs={"q": np.ones(1, np.float32)}), C.INVALID_ARGUMENT, C.INVALID_ARGUMENT,
         PREDICT),
    Case("extra input", predict(inputs={"x": np.ones(1, np.float32), "q": np.ones(1, np.float32)}),
         C.INVALID_ARGUMENT, C.INVALID_ARGUMENT, PREDICT),
    Case("no inputs", predict(inputs={}), C.INVALID_ARGUMENT, C.INVALID_ARGUMENT, PREDICT),
    Case("wrong dtype", predict(inputs={"x": np.array([b"a"])}), C.INVALID_ARGUMENT, C.INVALID_ARGUMENT, SESSION),
    Case("float64 for float32", predict(inputs={"x": np.ones(1)}), C.INVALID_ARGUMENT, C.INVALID_ARGUMENT, SESSION),
    Case("wrong rank", predict(inputs={"x": np.ones([2, 2], np.float32)}), C.INVALID_ARGUMENT, C.INVALID_ARGUMENT,
         SESSION),
    Case("unknown output_filter", predict(output_filter=["w"]), C.INVALID_ARGUMENT, C.INVALID_ARGUMENT, PREDICT),
    Case("duplicate output_filter", predict(output_filter=["y", "y"]), C.INVALID_ARGUMENT, C.INVALID_ARGUMENT,
         PREDICT, message="duplicate output tensor alias: y"),
    Case("tensor_content of the wrong size", predict_proto(shaped(3, content=b"\0" * 8)), C.INVALID_ARGUMENT,
         C.INVALID_ARGUMENT, INPUTS, message="tensor parsing error"),
    Case("more typed values than the shape holds (first ones used)", predict_proto(shaped(2, floats=[1, 2, 3])),
         C.OK, C.OK, TENSOR),
    Case("fewer typed values (last repeated)", predict_proto(shaped(3, floats=[1])), C.OK, C.OK, TENSOR),
    Case("an op's error keeps its code and message",
         lambda s: s.prediction.Predict(predict_request("topk", TOPK), timeout=30), C.INVALID_ARGUMENT,
         C.INVALID_ARGUMENT, SESSION, message="Need k >= 0, got -1"),
    Case("request over --max_request_bytes", predict(inputs={"x": np.ones([300_000], np.float32)}),
         C.RESOURCE_EXHAUSTED, C.RESOURCE_EXHAUSTED, SERVER),
    Case("batch over --max_batch_size", predict(inputs={"x": np.ones([101], np.float32)}), C.RESOURCE_EXHAUSTED,
         C.INVALID_ARGUMENT, "tensorflow/core/kernels/batching_util/shared_batch_scheduler.h",
         differs="TF Serving has the limit only with --enable_batching, as INVALID_ARGUMENT; ours is a "
                 "size limit like --max_request_bytes, so RESOURCE_EXHAUSTED", message="--max_batch_size 100"),
    # ---- Classify and Regress (tf.Example in): not served; `double` has a predict signature
    *(Case(kind.capitalize(), examples(kind), C.UNIMPLEMENTED, C.INVALID_ARGUMENT, source,
           differs="this server has Predict only: no model of the project has a classify or regress signature")
      for kind, source in (("classify", CLASSIFIER), ("regress", REGRESSOR))),
    # ---- GetModelMetadata
    Case("no metadata_field", metadata([]), C.INVALID_ARGUMENT, C.INVALID_ARGUMENT, METADATA),
    Case("unsupported metadata_field", metadata(["signature_def", "other"]), C.INVALID_ARGUMENT,
         C.INVALID_ARGUMENT, METADATA),
    Case("fields are checked before the model", metadata(["other"], name="nope"), C.INVALID_ARGUMENT,
         C.INVALID_ARGUMENT, METADATA),
    Case("metadata of an unknown model", metadata(["signature_def"], name="nope"), C.NOT_FOUND, C.NOT_FOUND, MANAGER),
    Case("metadata without model_spec", metadata(["signature_def"], spec=False), C.INVALID_ARGUMENT,
         C.INVALID_ARGUMENT, METADATA),
    # ---- GetModelStatus
    Case("status of an unknown model", status("nope"), C.NOT_FOUND, C.NOT_FOUND, STATUS),
    Case("status with an empty model name", status(""), C.NOT_FOUND, C.NOT_FOUND, STATUS),
    Case("status of an unknown version", status(version=1), C.NOT_FOUND, C.NOT_FOUND, STATUS),
    Case("status with an unknown version label: every version", status(label="nope"), C.OK, C.OK, STATUS),
    Case("status without model_spec", status(spec=False), C.INVALID_ARGUMENT, C.INVALID_ARGUMENT, STATUS),
    # ---- HandleReloadConfigRequest (each must leave the served models as they were)
    Case("reload without a model_config_list", reload(empty=True), C.INVALID_ARGUMENT, C.INVALID_ARGUMENT,
         MODEL_SERVICE),
    Case("reload naming a model twice", reload({"name": "double", "base_path": "double",
                                                "model_platform": "tensorflow"}),
         C.INVALID_ARGUMENT, C.INVALID_ARGUMENT, CORE, message="Illegal to list model double multiple times"),
    Case("reload with an unknown model_platform", reload({"name": "x", "base_path": "double",
                                                           "model_platform": "pytorch"}),
         C.INVALID_ARGUMENT, C.INVALID_ARGUMENT, CORE, message="model_platform 'pytorch' is not supported"),
    Case("reload without a model_platform", reload({"name": "x", "base_path": "double"}), C.INVALID_ARGUMENT,
         C.INVALID_ARGUMENT, CORE),
    Case("reload with a relative base_path", reload({"name": "x", "base_path": "double", "relative": True,
                                                      "model_platform": "tensorflow"}),
         C.INVALID_ARGUMENT, C.INVALID_ARGUMENT, CORE),
    Case("reload labelling a version not available", reload(labels={"canary": 1}),  # latest-1 serves only 3
         C.FAILED_PRECONDITION, C.FAILED_PRECONDITION, CORE),
    Case("reload with a base_path that does not exist", reload({"name": "x", "base_path": "absent",
                                                                 "model_platform": "tensorflow"}),
         C.INVALID_ARGUMENT, C.UNKNOWN, CORE,
         differs="TF Serving applies the config, waits for the model and answers UNKNOWN; ours refuses it whole"),
    Case("reload of a new model without a loadable version", reload({"name": "x", "base_path": "empty",
                                                                      "model_platform": "tensorflow"}),
         C.UNKNOWN, C.UNKNOWN, CORE, message="did not become available"),  # TF Serving: and yet applied
    Case("reload while not allowed (no --allow_reload_config)", reload(stub="locked"), C.PERMISSION_DENIED, C.OK,
         MODEL_SERVICE, differs="TF Serving has no such switch: any client may make it load any path",
         message="--allow_reload_config"),
]


@pytest.mark.parametrize("case", TABLE, ids=[case.name for case in TABLE])
def test_status_codes_match_tf_serving(stubs, case):
    assert case.ours == case.tf_serving or case.differs, f"{case.name}: undocumented difference from TF Serving"
    assert case.source or case.tf_serving is None
    if case.ours == C.OK:
        case.call(stubs)
    else:
        with pytest.raises(grpc.RpcError) as error:
            case.call(stubs)
        assert error.value.code() == case.ours, error.value.details()
        assert case.message in error.value.details()
    response = stubs.prediction.Predict(predict_request(), timeout=30)  # still serving, as before
    assert response.model_spec.version.value == 3 and list(response.outputs["y"].float_val) == [2.0, 5.0]


def test_status_with_a_version_label_lists_every_version(stubs):
    assert [(v.version, v.state) for v in status(label="nope")(stubs).model_version_status] == [
        (3, get_model_status_pb2.ModelVersionStatus.AVAILABLE)]
