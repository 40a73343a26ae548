"""The ranking SavedModel and the Trainer's run_fn. Stock TF ops only; the Transform graph inside.

Signatures ([B] rows; '' pads history):
  serving_default(user_id, movie_id: string [B]) -> score float32 [B] (the listwise
      re-ranker's, comparing each movie with the user's other rows in the request: send a
      user's candidates together), rating float32 [B], like_probability float32 [B].
      Ids map by one hash lookup to rows of their side features' embeddings, computed at
      export (an unknown id: those of ""/0 raw values), and of the relation features
      (models/ranking/relations.py).
  serve_history(user_id, movie_id, history: string [B, None], user_age: int64 [B],
      user_gender, user_occupation, user_zip: string [B]) -> the same, each row's history
      (more than MAX_HISTORY fails; unknown movies ignored) pooled with the stored one, and
      the query from the retrieval towers' `embed_request`.
"""
import json
import os
import types
from typing import Dict, List, Tuple

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from models import features as F
from models import training
from models.ranking import candidates
from models.ranking import model as M
from models.ranking import relations as R
from models.ranking.constants import RankingConfig
from models.retrieval import model as retrieval
from models.retrieval.constants import MAX_HISTORY
from models.retrieval.model import tables
from models.retrieval.towers import HISTORY_SIDE, request_history


def side_features(file_patterns: list, tft_output: tft.TFTransformOutput, id_key: str,
                  names: List[str]) -> Tuple[List[str], Dict[str, list]]:
    """(ids, {name: values}): each raw `id_key` ("user_id" or "movie_id") found in the transformed
    examples, and per transformed side feature in `names` (e.g. "user_gender_xf") one value per
    id: an int, or for a SparseTensor feature an int64 array of its ids."""
    vocabulary = [v.decode() if isinstance(v, bytes) else v
                  for v in tft_output.vocabulary_by_name(F.vocabulary_name(id_key))]
    rows: Dict[str, dict] = {}
    for batch in F.dataset(file_patterns, tft_output, 4096, shuffle=False):
        ids = batch[F.transformed_name(id_key)].numpy()
        columns = {name: _rows(batch[name]) for name in names}
        for i, index in enumerate(ids):
            if index < len(vocabulary) and vocabulary[index] not in rows:
                rows[vocabulary[index]] = {name: columns[name][i] for name in names}
    keys = sorted(rows)
    return keys, {name: [rows[key][name] for key in keys] for name in names}


def _rows(values) -> list:
    """A dense [B] tensor -> B ints; a SparseTensor [B, None] -> B int64 arrays of ids."""
    if isinstance(values, tf.SparseTensor):
        return list(tf.RaggedTensor.from_sparse(values).numpy())
    return [int(v) for v in values.numpy().reshape(-1)]


def _column(values: list):
    """One int per row -> int64 [rows]; an int64 array of ids per row -> SparseTensor [rows, None]."""
    if isinstance(values[-1], np.ndarray):
        return tf.RaggedTensor.from_row_lengths(np.concatenate(values).astype(np.int64),
                                                [len(v) for v in values]).to_sparse()
    return tf.constant(values, tf.int64)


def _table(keys: List[str], values: list, default: int) -> tf.lookup.StaticHashTable:
    """string id -> int64 value."""
    return tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
        tf.constant(keys, tf.string), tf.constant(values, tf.int64)), tf.constant(default, tf.int64))


class Ranker(F.RawFeatureModule):
    """The trained model behind the ids-only signatures (serving_default, serve_history)."""

    def __init__(self, model: M.RankingModel, tft_output: tft.TFTransformOutput, train_files: list,
                 listwise: M.ListwiseRanker, relations: R.Relations, towers=None):
        super().__init__(model, tft_output)
        self.listwise, self.relations, self.towers = listwise, relations, towers
        if F.NUM_OOV_BUCKETS != 1:
            raise ValueError("Ranker's tables give every unknown id one row: they need NUM_OOV_BUCKETS = 1")
        if towers is not None:  # the retrieval towers' embed_request: queries of request histories
            self.serve_history = tf.function(self._serve_history, input_signature=[
                tf.TensorSpec([None], tf.string, name="user_id"), tf.TensorSpec([None], tf.string, name="movie_id"),
                tf.TensorSpec([None, None], tf.string, name="history"), *HISTORY_SIDE])
        defaults = self._defaults()
        self.rows, self.ids, self.blocks = {}, {}, {}  # per id key: raw id -> row; by row its _xf, its embeddings
        names = {key: sorted(n for n in model.cardinalities if n.startswith(key.split("_")[0]))
                 for key in (F.MOVIE_ID, F.USER_ID)}  # the id's own _xf too
        if names[F.MOVIE_ID] + names[F.USER_ID] != sorted(model.cardinalities):  # the order `embed` concatenates
            raise ValueError(f"Ranking features {sorted(model.cardinalities)}: name each movie_... or user_...")
        for id_key in names:
            keys, values = side_features(train_files, tft_output, id_key, names[id_key])
            self.rows[id_key] = _table(keys, list(range(len(keys))), len(keys))  # unknown: the last row
            columns = {n: _column(values[n] + [defaults[n]]) for n in names[id_key]}
            self.ids[id_key] = tf.Variable(columns[F.transformed_name(id_key)], trainable=False)
            self.blocks[id_key] = tf.Variable(model.embed(columns, names[id_key]), trainable=False)

    def _defaults(self) -> dict:
        """Transformed features of a raw example whose values are all ""/0: an unknown id's."""
        raw = {key: tf.zeros([1, 0], spec.dtype) if isinstance(spec, tf.io.VarLenFeature)
               else tf.constant([""]) if spec.dtype == tf.string else tf.zeros([1], spec.dtype)
               for key, spec in self.tft_output.raw_feature_spec().items()}
        return {name: _rows(value)[0] for name, value in self.transform(**raw).items()}

    def _serve(self, user_id, movie_id, history=None, queries=None) -> dict:
        rows = {key: self.rows[key].lookup(ids) for key, ids in ((F.MOVIE_ID, movie_id), (F.USER_ID, user_id))}
        ids = {F.transformed_name(key): tf.gather(self.ids[key], row) for key, row in rows.items()}
        out = self.model.head(tf.concat([tf.gather(self.blocks[key], row) for key, row in rows.items()], axis=1), ids)
        pairs = self.relations(ids[F.transformed_name(F.USER_ID)], ids[F.transformed_name(F.MOVIE_ID)], history,
                               queries)
        _, user = tf.unique(user_id)  # each user's rows are one list
        return {"rating": out["rating"], "like_probability": tf.sigmoid(out["like_logit"]),
                "score": self.listwise.score(M.standardise_groups(pairs, user))}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="user_id"),
                                  tf.TensorSpec([None], tf.string, name="movie_id")])
    def serve(self, user_id, movie_id):
        return self._serve(user_id, movie_id)

    def _serve_history(self, user_id, movie_id, history, user_age, user_gender, user_occupation, user_zip):
        movies = request_history(history, MAX_HISTORY)
        movies = movies.with_flat_values(self.transform(movie_id=movies.flat_values)[F.transformed_name(F.MOVIE_ID)])
        known = self.tft_output.vocabulary_size_by_name(F.vocabulary_name(F.MOVIE_ID))
        queries = self.towers.embed_request(user_id=user_id, history=history, user_age=user_age,
                                            user_gender=user_gender, user_occupation=user_occupation,
                                            user_zip=user_zip)["embeddings"]
        return self._serve(user_id, movie_id, tf.ragged.boolean_mask(movies, movies < known), queries)


def save(ranker: Ranker, path: str) -> None:
    """Writes the SavedModel with its signatures (serve_history with towers only)."""
    signatures = {"serving_default": ranker.serve}
    if ranker.towers is not None:
        signatures["serve_history"] = ranker.serve_history
    tf.saved_model.save(ranker, path, signatures=signatures)


def run_fn(fn_args) -> None:
    """TFX Trainer entry point: trains the rating model (config.epochs; patience > 0 stops on the eval RMSE) and the
    listwise re-ranker, reading the retrieval Trainer's `fn_args.base_model`; saves both as one."""
    config = RankingConfig.of(fn_args.custom_config)
    if not fn_args.base_model:
        raise ValueError("The ranking Trainer needs the retrieval Trainer's model as base_model: the "
                         "re-ranker's features read its embeddings (see pipeline/pipeline.py)")
    tft_output = tft.TFTransformOutput(fn_args.transform_output)
    model = M.build(tft_output, config, M.mean_rating(fn_args.train_files, tft_output))
    training.fit(model, fn_args, tft_output, config.batch_size, config.epochs, callbacks=M.early_stopping(config))
    towers = tf.saved_model.load(fn_args.base_model)
    listwise, relations = train_listwise(towers, tft_output, fn_args, config)
    save(Ranker(model, tft_output, fn_args.train_files, listwise, relations,
                towers if hasattr(towers, "embed_request") else None), fn_args.serving_model_dir)


def train_listwise(towers, tft_output: tft.TFTransformOutput, fn_args, config: RankingConfig
                   ) -> Tuple[M.ListwiseRanker, R.Relations]:
    """The listwise re-ranker and the relation features it reads in serving.

    A share of each training user's movies is held out; a retrieval model with the served
    one's config is trained on the rest; its candidates for each user are the training
    lists, labelled by the held-out movies (models/ranking/candidates.py). The serving
    features are then built from the whole train split and `towers`, the served retrieval
    model. What it chose and learned goes to fn_args.model_run_dir/listwise.json.
    """
    sizes = {key: F.vocabulary_size(tft_output, key) for key in (F.USER_ID, F.MOVIE_ID, F.MOVIE_GENRES)}
    t = tables(tft_output, fn_args.train_files, sizes)
    user_ids, movie_ids = (np.array(tft_output.vocabulary_by_name(F.vocabulary_name(key)), dtype=object)
                           for key in (F.USER_ID, F.MOVIE_ID))
    genres = R.genre_matrix(t["bags"][F.MOVIE_GENRES], sizes[F.MOVIE_GENRES])
    kept, held = candidates.holdout(t["history"], config.holdout, config.holdout_seed)
    run_dir = os.path.join(fn_args.model_run_dir, "holdout_retrieval")
    tf.io.gfile.makedirs(run_dir)
    train_files = [candidates.held_out_examples(fn_args.train_files, tft_output, held,
                                                os.path.join(run_dir, "train.gz"))]
    holdout_towers = retrieval.train(tft_output, types.SimpleNamespace(
        train_files=train_files, eval_files=fn_args.eval_files, model_run_dir=run_dir), config.retrieval)
    lists = candidates.training_lists(holdout_towers, user_ids, movie_ids, kept, held, genres, config)
    listwise, history = M.fit_listwise(lists["features"], lists["labels"], config)
    queries = towers.embed_users(user_id=tf.constant(list(user_ids)))["embeddings"].numpy()
    embeddings = towers.movie_embeddings()["embeddings"].numpy()
    relations = R.Relations(*candidates.pairs(t["history"]), sizes[F.USER_ID], sizes[F.MOVIE_ID],
                            candidates.pad_rows(queries, sizes[F.USER_ID]),
                            candidates.pad_rows(embeddings, sizes[F.MOVIE_ID]), genres, lists["lambda"],
                            config.neighbours)
    with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, "listwise.json"), "w") as f:
        json.dump({"lists": int(len(lists["users"])), "positives": float(lists["labels"].sum()),
                   "ease_lambda": lists["lambda"], "ease_recall@20_by_lambda": lists["lambda_recall"],
                   "feature_means": R.describe(lists["features"]),
                   "history": {k: [float(v) for v in vs] for k, vs in history.items()}}, f, indent=1)
    return listwise, relations
