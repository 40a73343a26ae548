"""Two-tower retrieval model (TFRS) and the Trainer's run_fn.

The Trainer saves both towers, with the Transform graph inside, as one SavedModel with
two signatures that take raw features:
  embed_users(user_id: string [batch]) -> embeddings float32 [batch, dim]
  embed_movies(movie_id: string [batch], movie_genres: string [batch, None] ('' pads),
               movie_year: int64 [batch]) -> embeddings float32 [batch, dim]
components/index_builder.py turns them into ScaNN and brute-force indexes.
"""
from typing import Dict

import tensorflow as tf
import tensorflow_recommenders as tfrs
import tensorflow_transform as tft

from models import features as F
from models import training
from models.retrieval import constants as C


class QueryTower(tf.keras.Model):
    """user_id_xf int64 [batch] -> float32 [batch, dim]."""

    def __init__(self, n_users: int, dim: int):
        super().__init__()
        self.user = tf.keras.layers.Embedding(n_users, dim)

    def call(self, inputs: Dict[str, tf.Tensor]) -> tf.Tensor:
        return self.user(inputs[F.transformed_name(F.USER_ID)])


class CandidateTower(tf.keras.Model):
    """movie_id_xf [batch], movie_genres_xf sparse [batch, None], movie_year_xf [batch]
    -> float32 [batch, dim]."""

    def __init__(self, n_movies: int, n_genres: int, n_years: int, dim: int):
        super().__init__()
        self.n_genres = n_genres
        self.movie = tf.keras.layers.Embedding(n_movies, dim)
        self.year = tf.keras.layers.Embedding(n_years, dim)
        self.genres = tf.keras.layers.Dense(dim, use_bias=False)
        self.project = tf.keras.layers.Dense(dim)

    def call(self, inputs: Dict[str, tf.Tensor]) -> tf.Tensor:
        genres = tf.sparse.to_indicator(inputs[F.transformed_name(F.MOVIE_GENRES)], self.n_genres)
        features = tf.concat([self.movie(inputs[F.transformed_name(F.MOVIE_ID)]),
                              self.year(inputs[F.transformed_name(F.MOVIE_YEAR)]),
                              self.genres(tf.cast(genres, tf.float32))], axis=1)
        return self.project(features)


class RetrievalModel(tfrs.Model):
    """In-batch softmax over (user, rated movie) pairs."""

    def __init__(self, query: QueryTower, candidate: CandidateTower, temperature: float):
        super().__init__()
        self.query, self.candidate = query, candidate
        self.task = tfrs.tasks.Retrieval(temperature=temperature)

    def compute_loss(self, inputs: Dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        return self.task(self.query(inputs), self.candidate(inputs), compute_metrics=False)


def build(tft_output: tft.TFTransformOutput, config: dict) -> RetrievalModel:
    dim = config.get("embedding_dim", C.EMBEDDING_DIM)
    n_years = F.BUCKET_FEATURES[F.MOVIE_YEAR] + 1
    model = RetrievalModel(
        QueryTower(F.vocabulary_size(tft_output, F.USER_ID), dim),
        CandidateTower(F.vocabulary_size(tft_output, F.MOVIE_ID),
                       F.vocabulary_size(tft_output, F.MOVIE_GENRES), n_years, dim),
        config.get("temperature", C.TEMPERATURE))
    model.compile(optimizer=tf.keras.optimizers.Adagrad(config.get("learning_rate", C.LEARNING_RATE)))
    return model


class Towers(F.RawFeatureModule):
    """The trained towers behind raw-feature signatures (see the module docstring)."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="user_id")])
    def embed_users(self, user_id):
        return {"embeddings": self.model.query(self.transform(user_id=user_id))}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="movie_id"),
                                  tf.TensorSpec([None, None], tf.string, name="movie_genres"),
                                  tf.TensorSpec([None], tf.int64, name="movie_year")])
    def embed_movies(self, movie_id, movie_genres, movie_year):
        inputs = self.transform(movie_id=movie_id, movie_genres=movie_genres, movie_year=movie_year)
        return {"embeddings": self.model.candidate(inputs)}


def run_fn(fn_args) -> None:
    """TFX Trainer entry point: trains on the transformed train split, reports the
    eval loss, saves the towers to fn_args.serving_model_dir."""
    config = fn_args.custom_config or {}
    tft_output = tft.TFTransformOutput(fn_args.transform_output)
    model = build(tft_output, config)
    training.fit(model, fn_args, tft_output, config.get("batch_size", C.BATCH_SIZE),
                 config.get("epochs", C.EPOCHS))
    towers = Towers(model, tft_output)
    tf.saved_model.save(towers, fn_args.serving_model_dir,
                        signatures={"serving_default": towers.embed_users,
                                    "embed_users": towers.embed_users,
                                    "embed_movies": towers.embed_movies})
