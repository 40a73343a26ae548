"""The ranking model and its SavedModel, on a Transform run over a few hand-made rows."""
import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils

from models import features as F
from models.ranking import export
from models.ranking import model as M
from models.ranking.constants import RankingConfig
from models.retrieval import model as retrieval

STRINGS = (F.USER_ID, F.MOVIE_ID, F.USER_GENDER, F.USER_OCCUPATION, F.USER_ZIP, F.MOVIE_TITLE)
INTS = (F.USER_AGE, F.MOVIE_YEAR, F.TIMESTAMP)
SPEC = {**{k: tf.io.FixedLenFeature([1], tf.string) for k in STRINGS},
        **{k: tf.io.FixedLenFeature([1], tf.int64) for k in INTS},
        F.RATING: tf.io.FixedLenFeature([1], tf.float32),
        F.MOVIE_GENRES: tf.io.VarLenFeature(tf.string), F.MOVIE_TAGS: tf.io.VarLenFeature(tf.string)}
USERS = {b"u1": (b"F", 25, b"94110"), b"u2": (b"M", 40, b"10001"), b"u3": (b"M", 60, b"60601")}
MOVIES = {b"m1": (b"Heat (1995)", [b"Action", b"Crime"]), b"m2": (b"Clueless (1995)", [b"Comedy"]),
          b"m3": (b"Alien (1979)", [b"Horror", b"Sci-Fi"])}
# Users 1 and 3 like action and horror and dislike comedy; user 2 the other way round.
RATINGS = [(u, m, 5.0 if (m == b"m2") == (u == b"u2") else 1.0) for u in USERS for m in MOVIES]


def raw_row(user, movie, rating):
    gender, age, zip_code = USERS[user]
    title, genres = MOVIES[movie]
    return {F.USER_ID: [user], F.MOVIE_ID: [movie], F.USER_GENDER: [gender], F.USER_OCCUPATION: [b"other"],
            F.USER_ZIP: [zip_code], F.MOVIE_TITLE: [title], F.USER_AGE: [age], F.MOVIE_YEAR: [int(title[-5:-1])],
            F.TIMESTAMP: [880000000], F.RATING: [rating], F.MOVIE_GENRES: genres, F.MOVIE_TAGS: []}


@pytest.fixture(scope="module")
def transformed(tmp_path_factory):
    """(TFTransformOutput, [transformed examples file]) of the RATINGS rows."""
    root = tmp_path_factory.mktemp("tft")
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(SPEC))
    with tft_beam.Context(temp_dir=str(root / "tmp")):
        (rows, out_metadata), transform_fn = (
            [raw_row(*r) for r in RATINGS], metadata) | tft_beam.AnalyzeAndTransformDataset(F.preprocessing_fn)
        _ = transform_fn | tft_beam.WriteTransformFn(str(root / "transform"))
    metadata_io.write_metadata(metadata, str(root / "transform" / tft.TFTransformOutput.RAW_METADATA_DIR))
    coder = tft.coders.ExampleProtoCoder(out_metadata.schema)
    path = str(root / "train.gz")
    with tf.io.TFRecordWriter(path, options="GZIP") as writer:
        for row in rows:
            writer.write(coder.encode(row))
    return tft.TFTransformOutput(str(root / "transform")), [path]


def batch(transformed_pair):
    tft_output, files = transformed_pair
    return next(iter(F.dataset(files, tft_output, 100, shuffle=False)))


def test_model_reads_side_features_and_learns_both_heads(transformed):
    tf.keras.utils.set_random_seed(0)
    model = M.build(transformed[0], RankingConfig(embedding_dim=8, deep_layers=(16,), learning_rate=0.05,
                                                  negative_weight=0.0))  # every pair of the 9 rows is rated
    assert set(model.cardinalities) == {"user_id_xf", "user_age_xf", "user_gender_xf", "user_occupation_xf",
                                        "user_zip_xf", "movie_id_xf", "movie_year_xf", "movie_genres_xf",
                                        "movie_title_xf", "movie_tags_xf"}
    assert len(model.crosses) == 2
    data = tf.data.Dataset.from_tensors(batch(transformed))
    before = model.evaluate(data, return_dict=True, verbose=0)
    model.fit(data.repeat(60), verbose=0)
    after = model.evaluate(data, return_dict=True, verbose=0)
    assert after["rmse"] < 0.3 * before["rmse"]
    assert after["auc"] == 1.0  # the 9 rows' liked labels are separated
    out = model(batch(transformed))
    assert out["rating"].shape == (9,) and out["like_logit"].shape == (9,)


def test_plain_deep_network_has_no_cross_layers(transformed):
    model = M.build(transformed[0], RankingConfig(cross_layers=0, deep_layers=(16,)))
    model(batch(transformed))
    assert not model.crosses
    assert not any("cross" in w.name for w in model.trainable_weights)


def test_in_batch_negatives_teach_the_like_head_which_pairs_were_not_rated():
    tf.keras.utils.set_random_seed(0)
    ids = tf.constant([0, 1, 2, 3], tf.int64)  # user i rated (and liked) movie i only
    rated = {"user_id_xf": ids, "movie_id_xf": ids, F.RATING: tf.fill([4], 5.0)}
    model = M.RankingModel({"user_id_xf": 4, "movie_id_xf": 4},
                           RankingConfig(embedding_dim=8, deep_layers=(16,), negative_weight=1.0))
    model.compile(optimizer=tf.keras.optimizers.Adam(0.02))
    model.fit(tf.data.Dataset.from_tensors(rated).repeat(300), verbose=0)
    users, movies = np.meshgrid(np.arange(4), np.arange(4), indexing="ij")
    logits = model({"user_id_xf": tf.constant(users.ravel()), "movie_id_xf": tf.constant(movies.ravel())})
    like = tf.reshape(logits["like_logit"], [4, 4]).numpy()
    assert all(like[i, i] > max(np.delete(like[i], i)) for i in range(4))


def test_model_fits_ratings_from_ids_alone():
    tf.keras.utils.set_random_seed(0)
    ids = tf.constant([0, 1, 2, 3], tf.int64)
    rows = {"user_id_xf": ids, "movie_id_xf": ids, "movie_year_xf": tf.constant([0, 1, 1, 2], tf.int64),
            "movie_genres_xf": tf.sparse.from_dense(tf.constant([[1, 0], [0, 2], [1, 2], [2, 0]], tf.int64)),
            F.RATING: tf.constant([5.0, 1.0, 3.0, 4.0])}
    model = M.RankingModel({"user_id_xf": 5, "movie_id_xf": 5, "movie_year_xf": 3, "movie_genres_xf": 3},
                           RankingConfig(embedding_dim=8, deep_layers=(16,)))
    model.compile(optimizer=tf.keras.optimizers.Adam(0.05))
    data = tf.data.Dataset.from_tensors(rows)
    before = model.evaluate(data, return_dict=True, verbose=0)["loss"]
    model.fit(data.repeat(30), verbose=0)
    assert model.evaluate(data, return_dict=True, verbose=0)["loss"] < 0.2 * before
    assert model(rows)["rating"].shape == (4,) and model(rows)["like_logit"].shape == (4,)


def test_side_features_are_read_per_id(transformed):
    tft_output, files = transformed
    keys, values = export.side_features(files, tft_output, F.MOVIE_ID, ["movie_genres_xf", "movie_year_xf"])
    assert keys == ["m1", "m2", "m3"]
    genres = [v.decode() for v in tft_output.vocabulary_by_name(F.vocabulary_name(F.MOVIE_GENRES))]
    named = [sorted(genres[i] for i in ids) for ids in values["movie_genres_xf"]]
    assert named == [["Action", "Crime"], ["Comedy"], ["Horror", "Sci-Fi"]]
    assert values["movie_year_xf"][0] == values["movie_year_xf"][1] > values["movie_year_xf"][2]  # 1995, 1979


FRESH = """
import json, sys
import tensorflow as tf
m = tf.saved_model.load(sys.argv[1])
users, movies = json.loads(sys.argv[2])
out = m.signatures["serving_default"](user_id=tf.constant(users), movie_id=tf.constant(movies))
n, side = len(users), {"user_age": tf.zeros([len(users)], tf.int64)}
side.update({k: tf.fill([n], "") for k in ("user_gender", "user_occupation", "user_zip")})
rated = [["m1", "m9", ""]] * n  # m9: no such movie, ignored
empty, more = (m.signatures["serve_history"](user_id=tf.constant(users), movie_id=tf.constant(movies),
                                             history=tf.constant(h), **side) for h in ([[""]] * n, rated))
print(json.dumps({**{k: v.numpy().tolist() for k, v in out.items()}, "empty": empty["score"].numpy().tolist(),
                  "more": more["score"].numpy().tolist()}))
"""


def test_saved_model_serves_ids_in_a_process_that_imports_only_tensorflow(transformed, tmp_path):
    tft_output, files = transformed
    retrieval_config = {"embedding_dim": 8, "layers": [8], "epochs": 2, "batch_size": 9, "negatives": "in_batch"}
    transform_output = tft_output.transform_savedmodel_dir.rsplit("/", 1)[0]
    retrieval.run_fn(types.SimpleNamespace(
        custom_config=retrieval_config, transform_output=transform_output, train_files=files, eval_files=files,
        model_run_dir=str(tmp_path / "retrieval_run"), serving_model_dir=str(tmp_path / "retrieval")))
    fn_args = types.SimpleNamespace(
        custom_config={"embedding_dim": 8, "deep_layers": (16,), "learning_rate": 0.05, "epochs": 60,
                       "batch_size": 9, "patience": 0, "negative_weight": 0.0, "holdout": 0.5,
                       "retrieval": retrieval_config, "ease_lambdas": (1.0,)},
        transform_output=transform_output, train_files=files, eval_files=files, base_model=str(tmp_path / "retrieval"),
        model_run_dir=str(tmp_path / "run"), serving_model_dir=str(tmp_path / "serving"))
    export.run_fn(fn_args)
    listwise = json.load(open(tmp_path / "run" / "listwise.json"))
    assert listwise["lists"] >= 2 and listwise["ease_lambda"] == 1.0
    users, movies = ["u1", "u2", "u3", "stranger"], ["m1", "m1", "m2", "m3"]
    result = subprocess.run([sys.executable, "-c", FRESH, fn_args.serving_model_dir, json.dumps([users, movies])],
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr[-3000:]
    served = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(served) == {"rating", "like_probability", "score", "empty", "more"}
    # serve_history (stock TF too) with an empty history is serving_default; an unknown movie is ignored.
    np.testing.assert_allclose(served.pop("empty"), served["score"], rtol=1e-4, atol=1e-5)
    assert all(np.isfinite(served.pop("more")))  # lists of one row: their pooled features are in test_listwise
    assert all(np.isfinite(served["score"]))
    assert served["rating"][0] > 4 and served["rating"][1] < 2 and served["rating"][2] < 2  # as trained
    assert served["like_probability"][0] > 0.5 > served["like_probability"][1]
    assert all(np.isfinite(served["rating"]))  # the unknown user gets default features
