"""Tiny SavedModels and helpers for the serving tests (no real model needed)."""
import os
import shutil

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2


class Scale(tf.Module):
    """y = factor * x, z = x + 1; the factor is a variable, so a missing variables/ breaks it."""

    def __init__(self, factor: float):
        super().__init__()
        self.factor = tf.Variable(factor)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    def serve(self, x):
        return {"y": self.factor * x, "z": x + 1}


def save_scale(path, factor: float) -> str:
    """Saves Scale(factor) at `path` by renaming a finished copy into place, as a pusher should."""
    module = Scale(factor)
    staging = f"{path}.tmp"
    tf.saved_model.save(module, staging, signatures={"serving_default": module.serve})
    os.rename(staging, path)
    return str(path)


def save_examples_model(path) -> str:
    """TF1-style model on serialized tf.Examples with a feature x [1]: classify -> classes
    ["yes", "no"] with scores [x, 1 - x]; regress (serving_default) -> 2x."""
    with tf.Graph().as_default():
        serialized = tf.compat.v1.placeholder(tf.string, [None], name="examples")
        x = tf.io.parse_example(serialized, {"x": tf.io.FixedLenFeature([1], tf.float32)})["x"]
        classes = tf.tile(tf.constant([["yes", "no"]]), [tf.shape(x)[0], 1])
        with tf.compat.v1.Session() as session:
            builder = tf.compat.v1.saved_model.Builder(str(path))
            builder.add_meta_graph_and_variables(session, ["serve"], signature_def_map={
                "classify": tf.compat.v1.saved_model.classification_signature_def(
                    serialized, classes, tf.concat([x, 1 - x], axis=1)),
                "serving_default": tf.compat.v1.saved_model.regression_signature_def(serialized, 2 * x)})
            builder.save()
    return str(path)


class FakeRetrieval(tf.Module):
    """Knows users u1, u2; offers m1..m4 with scores 4..1, except m4 for u2 (-inf: u2 rated it).
    `legacy`: an older export, without the known_user output."""

    def __init__(self, legacy: bool = False):
        super().__init__()
        self.legacy = legacy

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="user_id")])
    def serve(self, user_id):
        batch = tf.shape(user_id)[0]
        scores = tf.tile(tf.constant([[4.0, 3.0, 2.0, 1.0]]), [batch, 1])
        scores = tf.where((user_id == "u2")[:, None] & (tf.range(4) == 3)[None, :], -np.inf, scores)
        ids = tf.tile(tf.constant([["m1", "m2", "m3", "m4"]]), [batch, 1])
        outputs = {"movie_ids": ids, "scores": scores, "titles": "T" + ids}
        if not self.legacy:
            outputs["known_user"] = (user_id == "u1") | (user_id == "u2")
        return outputs

    @tf.function(input_signature=[tf.TensorSpec([], tf.int32, name="k")])
    def popular(self, k):
        ids = tf.constant(["m9", "m8", "m7", "m6", "m5"])[:k]
        return {"movie_ids": ids, "titles": "T" + ids}


class FakeRanking(tf.Module):
    """rating = the movie's digit for u1, 10 - digit for others; like_probability = rating / 10
    (`legacy`: an older export, rating only)."""

    def __init__(self, legacy: bool = False):
        super().__init__()
        self.legacy = legacy

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="user_id"),
                                  tf.TensorSpec([None], tf.string, name="movie_id")])
    def serve(self, user_id, movie_id):
        digit = tf.strings.to_number(tf.strings.substr(movie_id, 1, 1))
        rating = tf.where(user_id == "u1", digit, 10.0 - digit)
        return {"rating": rating} if self.legacy else {"rating": rating, "like_probability": rating / 10}


def save_module(module, path, **signatures) -> str:
    tf.saved_model.save(module, str(path), signatures=signatures)
    return str(path)


def predict_request(name="double", inputs=None, signature="", version=None, label=None, output_filter=()):
    request = predict_pb2.PredictRequest()
    request.model_spec.name, request.model_spec.signature_name = name, signature
    if version is not None:
        request.model_spec.version.value = version
    if label is not None:
        request.model_spec.version_label = label
    for key, value in (inputs if inputs is not None else {"x": np.array([1.0, 2.5], np.float32)}).items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    request.output_filter.extend(output_filter)
    return request


def code_of(call) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as error:
        call()
    return error.value.code()


def broken_copy(source, target, how: str) -> None:
    """A broken version at `target`: `source` with saved_model.pb cut in half ("truncated")
    or without its variables ("no_variables"), renamed into place when complete."""
    staging = f"{target}.tmp"
    shutil.copytree(source, staging)
    if how == "truncated":
        pb = os.path.join(staging, "saved_model.pb")
        data = open(pb, "rb").read()
        open(pb, "wb").write(data[:len(data) // 2])
    else:
        shutil.rmtree(os.path.join(staging, "variables"))
    os.rename(staging, target)


class TopK(tf.Module):
    """serving_default(x float [None], k int32 []) -> values: the k largest of x. k < 0 makes
    TensorFlow's TopKV2 op fail with INVALID_ARGUMENT "Need k >= 0, got -1"."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x"), tf.TensorSpec([], tf.int32, name="k")])
    def serve(self, x, k):
        return {"values": tf.math.top_k(x, k=k).values}


def dangling_copy(source, target) -> None:
    """A version at `target` that cannot load: `source` with its variables' data file replaced by a
    symbolic link to nowhere, renamed into place when complete."""
    staging = f"{target}.tmp"
    shutil.copytree(source, staging)
    (data,) = [f for f in os.listdir(os.path.join(staging, "variables")) if f.startswith("variables.data")]
    os.remove(os.path.join(staging, "variables", data))
    os.symlink("/nonexistent/variables.data", os.path.join(staging, "variables", data))
    os.rename(staging, target)
