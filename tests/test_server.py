"""serving/server.py over real gRPC on loopback, with a tiny SavedModel: y = 2x, z = x + 1."""
import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2, model_service_pb2_grpc,
                                     predict_pb2, prediction_service_pb2_grpc)

from serving import server as S


class Double(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    def serve(self, x):
        return {"y": 2 * x, "z": x + 1}


@pytest.fixture(scope="module")
def stubs(tmp_path_factory):
    base = tmp_path_factory.mktemp("models")
    module = Double()
    for version in (1, 3):
        tf.saved_model.save(module, str(base / "double" / str(version)),
                            signatures={"serving_default": module.serve})
    (base / "double" / "7").mkdir()  # no saved_model.pb: not a version
    config = S.write_config(str(base / "models.config"), {"double": "double"})
    port = S.free_port()
    server = S.serve(S.read_config(config), port)
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield (prediction_service_pb2_grpc.PredictionServiceStub(channel),
           model_service_pb2_grpc.ModelServiceStub(channel))
    channel.close()
    server.stop(None)


def predict(stub, name="double", inputs=None, signature="", version=None, output_filter=()):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = version
    for key, value in (inputs if inputs is not None else {"x": np.array([1.0, 2.5], np.float32)}).items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    request.output_filter.extend(output_filter)
    return stub.Predict(request, timeout=10)


def code_of(call):
    with pytest.raises(grpc.RpcError) as error:
        call()
    return error.value.code()


def test_predict_serves_the_newest_version(stubs):
    response = predict(stubs[0])
    assert tf.make_ndarray(response.outputs["y"]).tolist() == [2.0, 5.0]
    assert tf.make_ndarray(response.outputs["z"]).tolist() == [2.0, 3.5]
    assert response.model_spec.name == "double" and response.model_spec.version.value == 3


def test_output_filter(stubs):
    assert list(predict(stubs[0], output_filter=["z"]).outputs) == ["z"]
    assert code_of(lambda: predict(stubs[0], output_filter=["w"])) == grpc.StatusCode.INVALID_ARGUMENT


def test_errors_have_tf_serving_status_codes(stubs):
    prediction = stubs[0]
    assert code_of(lambda: predict(prediction, name="nope")) == grpc.StatusCode.NOT_FOUND
    assert code_of(lambda: predict(prediction, version=1)) == grpc.StatusCode.NOT_FOUND
    assert code_of(lambda: predict(prediction, name="")) == grpc.StatusCode.INVALID_ARGUMENT
    assert code_of(lambda: predict(prediction, signature="other")) == grpc.StatusCode.FAILED_PRECONDITION
    assert code_of(lambda: predict(prediction, inputs={"q": np.array([1.0])})) == grpc.StatusCode.INVALID_ARGUMENT
    assert code_of(lambda: predict(prediction, inputs={"x": np.array([b"a"])})) == grpc.StatusCode.INVALID_ARGUMENT
    assert predict(prediction).outputs  # still serving after the errors


def test_model_status_and_metadata(stubs):
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "double"
    status = stubs[1].GetModelStatus(request, timeout=10).model_version_status
    assert [(s.version, s.state) for s in status] == [(3, get_model_status_pb2.ModelVersionStatus.AVAILABLE)]

    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "double"
    signatures = get_model_metadata_pb2.SignatureDefMap()
    stubs[0].GetModelMetadata(request, timeout=10).metadata["signature_def"].Unpack(signatures)
    signature = signatures.signature_def["serving_default"]
    assert list(signature.inputs) == ["x"] and sorted(signature.outputs) == ["y", "z"]


def test_missing_model_directory_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="run the pipeline"):
        S.ModelServer({"absent": str(tmp_path / "absent")})
