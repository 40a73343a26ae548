"""Tiny SavedModels and helpers for the serving tests (no real model needed)."""
import os
import shutil

import grpc
import numpy as np
import pytest
import tensorflow as tf
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tensorflow_serving.apis import predict_pb2

from models.retrieval.towers import request_history


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


class FakeRetrieval(tf.Module):
    """A catalogue m1..m120 scored 1000 - N for movie mN (m1 best), like the real model's signatures:
    serving_default(user_id) -> the top 100, retrieve(user_id, exclude, k) -> the top k without
    `exclude`, popular(k) -> m9, m8, ... Knows users u1, u2; u2 rated m4 (never offered to u2)."""

    MOVIES = 120

    def __init__(self):
        super().__init__()
        self.ids = tf.constant([f"m{i}" for i in range(1, self.MOVIES + 1)])

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="user_id"),
                                  tf.TensorSpec([None, None], tf.string, name="exclude"),
                                  tf.TensorSpec([], tf.int32, name="k")])
    def retrieve(self, user_id, exclude, k):
        batch = tf.shape(user_id)[0]
        ids = tf.tile(self.ids[None, :], [batch, 1])
        scores = 1000.0 - tf.cast(tf.tile(tf.range(1, self.MOVIES + 1)[None, :], [batch, 1]), tf.float32)
        rated = tf.where(user_id == "u2", "m4", "")[:, None]
        banned = tf.concat([rated, exclude], axis=1)
        drop = tf.reduce_any(tf.equal(ids[:, :, None], banned[:, None, :]), axis=2)
        scores, best = tf.math.top_k(tf.where(drop, float("-inf"), scores), k=tf.minimum(k, self.MOVIES))
        ids = tf.gather(ids, best, batch_dims=1)
        return {"movie_ids": ids, "scores": scores, "titles": "T" + ids,
                "known_user": (user_id == "u1") | (user_id == "u2")}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="user_id"),
                                  tf.TensorSpec([None, None], tf.string, name="exclude"),
                                  tf.TensorSpec([], tf.int32, name="k"),
                                  tf.TensorSpec([None, None], tf.string, name="history"),
                                  tf.TensorSpec([None], tf.int64, name="user_age"),
                                  tf.TensorSpec([None], tf.string, name="user_gender"),
                                  tf.TensorSpec([None], tf.string, name="user_occupation"),
                                  tf.TensorSpec([None], tf.string, name="user_zip")])
    def retrieve_history(self, user_id, exclude, k, history, user_age, user_gender, user_occupation, user_zip):
        """retrieve, with the history's movies excluded and the movies numbered past the history's
        highest first (+500); ids that are not m1..m120 are ignored and counted. At most 5 a row."""
        movies = request_history(history, 5)
        known = tf.ragged.map_flat_values(tf.strings.regex_full_match, movies, "m([1-9]|[1-9][0-9]|1[01][0-9]|120)")
        numbers = tf.ragged.map_flat_values(lambda m: tf.strings.to_number(tf.strings.substr(m, 1, -1)),
                                            tf.ragged.boolean_mask(movies, known))
        highest = tf.reduce_max(tf.concat([numbers, tf.zeros([tf.size(user_id), 1])], 1), axis=1)
        out = self.retrieve(user_id, tf.concat([exclude, history], 1), self.MOVIES)
        boosted = out["scores"] + 500.0 * tf.cast(1000.0 - out["scores"] > highest[:, None], tf.float32)
        scores, best = tf.math.top_k(boosted, k=tf.minimum(k, self.MOVIES))
        ids = tf.gather(out["movie_ids"], best, batch_dims=1)
        return {"movie_ids": ids, "scores": scores, "titles": "T" + ids,
                "known_user": (user_id == "u1") | (user_id == "u2"),
                "history_unknown": tf.reduce_sum(tf.cast(~known, tf.int32), axis=1)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="user_id")])
    def serve(self, user_id):
        return self.retrieve(user_id, tf.zeros([tf.size(user_id), 0], tf.string), 100)

    @tf.function(input_signature=[tf.TensorSpec([], tf.int32, name="k")])
    def popular(self, k):
        ids = tf.constant(["m9", "m8", "m7", "m6", "m5"])[:k]
        return {"movie_ids": ids, "titles": "T" + ids}

    def save(self, path) -> str:
        return save_module(self, path, serving_default=self.serve, popular=self.popular, retrieve=self.retrieve,
                           retrieve_history=self.retrieve_history)


class FakeRanking(tf.Module):
    """For movie mN: score = N (highest N first), like_probability = (121 - N) / 128 (m1 first),
    rating = 3N mod 7 (m2, m4, m1, m3 among m1..m4)."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="user_id"),
                                  tf.TensorSpec([None], tf.string, name="movie_id")])
    def serve(self, user_id, movie_id):
        number = tf.strings.to_number(tf.strings.substr(movie_id, 1, -1))
        return {"score": number, "like_probability": (121.0 - number) / 128.0,
                "rating": tf.math.floormod(3.0 * number, 7.0)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="user_id"),
                                  tf.TensorSpec([None], tf.string, name="movie_id"),
                                  tf.TensorSpec([None, None], tf.string, name="history"),
                                  tf.TensorSpec([None], tf.int64, name="user_age"),
                                  tf.TensorSpec([None], tf.string, name="user_gender"),
                                  tf.TensorSpec([None], tf.string, name="user_occupation"),
                                  tf.TensorSpec([None], tf.string, name="user_zip")])
    def serve_history(self, user_id, movie_id, history, user_age, user_gender, user_occupation, user_zip):
        """serve, with 1000 added to score per history movie in the row and 100 per side feature given."""
        out = self.serve(user_id, movie_id)
        given = tf.stack([user_age > 0, user_gender != "", user_occupation != "", user_zip != ""], 1)
        extra = 1000.0 * tf.reduce_sum(tf.cast(history != "", tf.float32), 1)
        return {**out, "score": tf.strings.to_number(tf.strings.substr(movie_id, 1, -1)) + extra
                + 100.0 * tf.reduce_sum(tf.cast(given, tf.float32), 1)}


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


def health_of(channel, service: str = "", timeout: float = 10.0) -> str:
    """The status the server's grpc.health.v1 service reports for `service`: "SERVING", ..."""
    request = health_pb2.HealthCheckRequest(service=service)
    status = health_pb2_grpc.HealthStub(channel).Check(request, timeout=timeout).status
    return health_pb2.HealthCheckResponse.ServingStatus.Name(status)


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
