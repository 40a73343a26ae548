"""Two-tower retrieval model (TFRS) and the Trainer's run_fn.

The Trainer saves both towers, the Transform graph inside, as one SavedModel whose
signatures take raw features ('' pads string [batch, None] inputs):
  embed_users(user_id: string [batch]) -> embeddings float32 [batch, dim]
  embed_request(user_id, history, user_age: int64, user_gender, user_occupation, user_zip)
      -> embeddings [batch, dim]: `history` pooled with the user's training movies (a new
         user: `history` alone, with the side features given; 0 or '' for unknown)
  movie_embeddings() -> movie_id string [movies], embeddings [movies, dim] (the train split's)
  embed_movies(movie_id, movie_title, movie_year: int64, movie_genres, movie_tags) -> embeddings

Training is a softmax over the batch's movies plus sampled negatives (NEGATIVES), with
logQ correction. The query's history is split afresh at every step, per user, by a coin:
a share (`history_share`) is the input, and only examples whose movie fell in the rest are
trained on, so the input never depends on which movie is the target. A share of users
(`anonymous_share`, by another coin) train with the unknown user id in place of theirs, so
a new user's query (that id, the history given) is trained as well.
"""
from typing import Dict, List, Tuple

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs
import tensorflow_transform as tft

from models import features as F
from models import training
from models.retrieval.constants import RetrievalConfig
from models.retrieval.towers import (
    HISTORY,
    HISTORY_SIDE,
    MOVIE_BAGS,
    SIDE,
    USER_SIDE,
    CandidateTower,
    MovieTable,
    QueryTower,
    coin,
    distinct,
)

NEGATIVES = ("in_batch", "uniform", "hard", "mixed")


class RetrievalModel(tfrs.Model):
    """Softmax over (user, rated movie) pairs with logQ-corrected negatives."""

    def __init__(self, query: QueryTower, candidate: CandidateTower, movies: MovieTable,
                 counts: np.ndarray, config: RetrievalConfig):
        super().__init__()
        self.query, self.candidate, self.movies = query, candidate, movies
        self.negatives, self.history_share = config.negatives, config.history_share
        self.anonymous_share = config.anonymous_share
        if not 0.0 < self.history_share < 1.0:
            raise ValueError(f"history_share={self.history_share}: choose a share in (0, 1) in the retrieval config")
        if not 0.0 <= self.anonymous_share < 1.0:
            raise ValueError(f"anonymous_share={self.anonymous_share}: choose a share in [0, 1) "
                             "in the retrieval config")
        if self.negatives not in NEGATIVES:
            raise ValueError(f"negatives={self.negatives!r}: choose one of {NEGATIVES} in the retrieval config")
        self.num_sampled = 0 if self.negatives == "in_batch" else config.num_sampled
        rated = counts > 0
        self.popularity = tf.constant(counts / counts.sum(), tf.float32)  # [movies], p(positive = j)
        self.uniform = tf.constant(rated / rated.sum(), tf.float32)  # [movies], over train movies
        hard = config.num_hard_negatives if self.negatives == "hard" else None
        self.task = tfrs.tasks.Retrieval(temperature=config.temperature,
                                         num_hard_negatives=hard or None, remove_accidental_hits=True)

    def _sample(self) -> tuple:
        """The sampled negatives' ids [s] and the mixture weight of each sampler."""
        n = self.num_sampled
        share = {"uniform": (1.0, 0.0), "hard": (0.0, 1.0), "mixed": (0.5, 0.5)}[self.negatives]
        n_uniform = int(n * share[0])
        ids = tf.concat([tf.random.categorical(tf.math.log(self.uniform)[None], n_uniform)[0],
                         tf.random.categorical(tf.math.log(self.popularity)[None], n - n_uniform)[0]], 0)
        return ids, n_uniform, n - n_uniform

    def _history_coin(self, inputs: Dict[str, tf.Tensor]) -> Tuple[Dict[str, tf.Tensor], tf.Tensor]:
        """The module docstring's coin: `inputs` with HISTORY (the share of each user's history
        the query reads) and SIDE, the user id replaced by the unknown id's (a new user's) for
        an `anonymous_share` of users, and weights float32 [batch], 1 where the example's movie
        fell in the rest (the examples trained on)."""
        key, seed, share = F.transformed_name(F.USER_ID), self.optimizer.iterations, self.history_share
        user = inputs[key]
        history = self.query.history.gather(user)
        keep = tf.ragged.map_flat_values(lambda m: coin(tf.repeat(user, history.row_lengths()), m, seed) < share,
                                         history)
        weights = tf.cast(coin(user, inputs[F.transformed_name(F.MOVIE_ID)], seed) >= share, tf.float32)
        anonymous = coin(user, tf.constant(-1, tf.int64), seed) < self.anonymous_share
        unknown = tf.fill(tf.shape(user), tf.cast(self.query.user.input_dim - 1, tf.int64))
        return {**inputs, key: tf.where(anonymous, unknown, user), HISTORY: tf.ragged.boolean_mask(history, keep),
                SIDE: tf.gather(self.query.side, user)}, weights

    def compute_loss(self, inputs: Dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        positives = inputs[F.transformed_name(F.MOVIE_ID)]  # [batch]
        weights = None
        if training and self.query.use_history:
            inputs, weights = self._history_coin(inputs)
        queries = self.query(inputs)  # [batch, dim]
        candidates = self.candidate(inputs)  # [batch, dim]
        ids, n_uniform, n_popular = positives, 0, 0
        if self.num_sampled:
            sampled, n_uniform, n_popular = self._sample()
            candidates = tf.concat([candidates, self.candidate(self.movies.gather(sampled))], 0)
            ids = tf.concat([positives, sampled], 0)
        probability = sampling_probability(ids, self.popularity, self.uniform, tf.shape(positives)[0],
                                           n_popular, n_uniform)
        return self.task(queries, candidates, sample_weight=weights, candidate_sampling_probability=probability,
                         candidate_ids=ids, compute_metrics=False)


def sampling_probability(ids: tf.Tensor, popularity: tf.Tensor, uniform: tf.Tensor, batch,
                         n_popular: int, n_uniform: int) -> tf.Tensor:
    """The logQ correction's q: each candidate's probability under the mixture it was drawn
    from, the `batch` positives and `n_popular` draws by `popularity`, the `n_uniform`
    draws by `uniform` (both float32 [movies]), weighted by their counts.

    Returns:
      float32 [len(ids)].
    """
    batch = tf.cast(batch, tf.float32)
    return (((batch + n_popular) * tf.gather(popularity, ids) + n_uniform * tf.gather(uniform, ids))
            / (batch + n_popular + n_uniform))


def tables(tft_output: tft.TFTransformOutput, files: List[str], sizes: Dict[str, int]) -> dict:
    """Reads the transformed train split once into the towers' lookup tables.

    Returns:
      side int64 [users, 4] (USER_SIDE ids by user_id_xf), history (per user, an int64
      array of the movies they rated), year int64 [movies], bags ({feature: list of int64
      arrays} by movie_id_xf) and counts int64 [movies] (ratings per movie).
    """
    n_users, n_movies = sizes[F.USER_ID], sizes[F.MOVIE_ID]
    side = np.zeros([n_users, len(USER_SIDE)], np.int64)
    year = np.zeros([n_movies], np.int64)
    bags = {key: [np.zeros([0], np.int64)] * n_movies for key in MOVIE_BAGS}
    seen_user, seen_movie = np.zeros(n_users, bool), np.zeros(n_movies, bool)
    users, movies = [], []
    for batch in F.dataset(files, tft_output, 4096, shuffle=False):
        user, movie = batch[F.transformed_name(F.USER_ID)].numpy(), batch[F.transformed_name(F.MOVIE_ID)].numpy()
        users.append(user)
        movies.append(movie)
        ids, first = np.unique(user, return_index=True)
        new = ~seen_user[ids]
        side[ids[new]] = np.stack([batch[F.transformed_name(k)].numpy()[first[new]] for k in USER_SIDE], 1)
        seen_user[ids] = True
        ids, first = np.unique(movie, return_index=True)
        new = ~seen_movie[ids]
        year[ids[new]] = batch[F.transformed_name(F.MOVIE_YEAR)].numpy()[first[new]]
        for key in MOVIE_BAGS:
            ragged = tf.RaggedTensor.from_sparse(batch[F.transformed_name(key)])
            rows = np.split(ragged.flat_values.numpy(), ragged.row_splits.numpy()[1:-1])
            for movie_xf, row in zip(ids[new], first[new], strict=True):
                bags[key][movie_xf] = rows[row] if row < len(rows) else np.zeros([0], np.int64)
        seen_movie[ids] = True
    users, movies = np.concatenate(users), np.concatenate(movies)
    order = np.argsort(users, kind="stable")
    history = np.split(movies[order], np.cumsum(np.bincount(users, minlength=n_users))[:-1])
    return {"side": side, "history": history, "year": year, "bags": bags,
            "counts": np.bincount(movies, minlength=n_movies)}


def build(tft_output: tft.TFTransformOutput, train_files: List[str], config: RetrievalConfig) -> RetrievalModel:
    sizes = {key: F.vocabulary_size(tft_output, key) for key in F.VOCAB_FEATURES}
    sizes.update({key: F.bucket_count(key) for key in F.BUCKET_FEATURES})
    t = tables(tft_output, train_files, sizes)
    dim, layers = config.embedding_dim, config.layers
    model = RetrievalModel(
        QueryTower(t["side"], t["history"], sizes, dim, layers, config.use_history),
        CandidateTower(sizes, dim, layers), MovieTable(t["year"], t["bags"]), t["counts"], config)
    model.compile(optimizer=tf.keras.optimizers.Adam(config.learning_rate))
    return model


class Towers(F.RawFeatureModule):
    """The trained towers behind raw-feature signatures (see the module docstring)."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="user_id")])
    def embed_users(self, user_id):
        return {"embeddings": self.model.query(self.transform(user_id=user_id))}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="user_id"),
                                  tf.TensorSpec([None, None], tf.string, name="history"), *HISTORY_SIDE])
    def embed_request(self, user_id, history, user_age, user_gender, user_occupation, user_zip):
        query, width = self.model.query, self.tft_output.vocabulary_size_by_name(F.vocabulary_name(F.MOVIE_ID))
        inputs = self.transform(user_id=user_id, user_age=user_age, user_gender=user_gender,
                                user_occupation=user_occupation, user_zip=user_zip)
        user = inputs[F.transformed_name(F.USER_ID)]
        stored = tf.gather(query.side, user)  # [batch, 4]; an unknown id's row
        given = tf.stack([user_age > 0, user_gender != "", user_occupation != "", user_zip != ""], 1)
        new = user >= self.tft_output.vocabulary_size_by_name(F.vocabulary_name(F.USER_ID))
        side = tf.stack([inputs[F.transformed_name(key)] for key in USER_SIDE], 1)
        ragged = tf.ragged.boolean_mask(history, history != "")
        ids = ragged.with_flat_values(self.transform(movie_id=ragged.flat_values)[F.transformed_name(F.MOVIE_ID)])
        union = distinct(tf.concat([query.history.gather(user), tf.ragged.boolean_mask(ids, ids < width)], 1), width)
        return {"embeddings": query({**inputs, HISTORY: union,
                                     SIDE: tf.where(new[:, None] & given, side, stored)})}

    @tf.function(input_signature=[])
    def movie_embeddings(self):
        ids = tf.constant(self.tft_output.vocabulary_by_name(F.vocabulary_name(F.MOVIE_ID)))
        inputs = self.model.movies.gather(tf.range(tf.size(ids, out_type=tf.int64)))
        return {"movie_id": ids, "embeddings": self.model.candidate(inputs)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="movie_id"),
                                  tf.TensorSpec([None], tf.string, name="movie_title"),
                                  tf.TensorSpec([None], tf.int64, name="movie_year"),
                                  tf.TensorSpec([None, None], tf.string, name="movie_genres"),
                                  tf.TensorSpec([None, None], tf.string, name="movie_tags")])
    def embed_movies(self, movie_id, movie_title, movie_year, movie_genres, movie_tags):
        inputs = self.transform(movie_id=movie_id, movie_title=movie_title, movie_year=movie_year,
                                movie_genres=movie_genres, movie_tags=movie_tags)
        return {"embeddings": self.model.candidate(inputs)}


def train(tft_output: tft.TFTransformOutput, fn_args, config: RetrievalConfig) -> Towers:
    """Builds and trains the model on fn_args.train_files for config.epochs (patience > 0: early stopping
    on the eval loss of fn_args.eval_files); train_stats.json into fn_args.model_run_dir."""
    model = build(tft_output, fn_args.train_files, config)
    stop = [tf.keras.callbacks.EarlyStopping("val_loss", patience=config.patience, restore_best_weights=True)]
    training.fit(model, fn_args, tft_output, config.batch_size, config.epochs, stop if config.patience else [])
    return Towers(model, tft_output)


def run_fn(fn_args) -> None:
    """TFX Trainer entry point: trains the towers (`train`), saves them to fn_args.serving_model_dir."""
    config = RetrievalConfig.of(fn_args.custom_config)
    towers = train(tft.TFTransformOutput(fn_args.transform_output), fn_args, config)
    tf.saved_model.save(towers, fn_args.serving_model_dir,
                        signatures={"serving_default": towers.embed_users,
                                    "embed_users": towers.embed_users,
                                    "embed_request": towers.embed_request,
                                    "movie_embeddings": towers.movie_embeddings,
                                    "embed_movies": towers.embed_movies})
