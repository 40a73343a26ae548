"""Rating benchmark on ML-100K: RMSE of global mean, biased MF, the plain deep network and
the DCN (the ranking model's rating head). What the ranking model does for the served
order is scored by benchmarks/quality.py.

    .venv/bin/python -m benchmarks.ranking [--data-dir /path/to/ml-100k] [--seeds 3]

Split: benchmarks/PROTOCOL.md's reference random 80/20 (benchmarks/baselines.stack_split); 10% of the
training rows (seeded) are held out for early stopping, so the test split is never looked at
before the final evaluation. Features: models/features.py's preprocessing_fn, run in this
process by TF Transform's Beam implementation (analysed on the training rows), the same
code the pipeline's Transform runs. Models: models/ranking (cross_layers=0 is the plain
deep network). Figures (medians over seeds) go to benchmarks/results/ranking.json.
"""
import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np
import pandas as pd
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils

from benchmarks import baselines
from components.movielens_formats import parse_movie, parse_user
from components.movielens_tables import read_table
from models import features as F
from models import training
from models.ranking import model as M
from models.ranking.constants import RankingConfig

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "ranking.json")
SPEC = {**{k: tf.io.FixedLenFeature([1], tf.string) for k in
           (F.USER_ID, F.MOVIE_ID, F.USER_GENDER, F.USER_OCCUPATION, F.USER_ZIP, F.MOVIE_TITLE)},
        **{k: tf.io.FixedLenFeature([1], tf.int64) for k in (F.USER_AGE, F.MOVIE_YEAR, F.TIMESTAMP)},
        F.RATING: tf.io.FixedLenFeature([1], tf.float32),
        F.MOVIE_GENRES: tf.io.VarLenFeature(tf.string), F.MOVIE_TAGS: tf.io.VarLenFeature(tf.string)}


def raw_rows(ratings: pd.DataFrame, data_dir: str) -> list:
    """Ratings joined with u.user and u.item (read as the pipeline reads them), as TF Transform
    instance dicts."""
    users = read_table(os.path.join(data_dir, "u.user"), parse_user)
    movies = read_table(os.path.join(data_dir, "u.item"), parse_movie)
    rows = []
    for user, movie, rating, stamp in ratings[["user_id", "movie_id", "rating", "timestamp"]].itertuples(index=False):
        person, film = users[user], movies[movie]
        rows.append({F.USER_ID: [user.encode()], F.MOVIE_ID: [movie.encode()], F.USER_AGE: [person.age],
                     F.USER_GENDER: [person.gender.encode()], F.USER_OCCUPATION: [person.occupation.encode()],
                     F.USER_ZIP: [person.zip.encode()], F.MOVIE_TITLE: [film.title.encode()],
                     F.MOVIE_YEAR: [film.year], F.MOVIE_GENRES: [g.encode() for g in film.genres],
                     F.MOVIE_TAGS: [], F.TIMESTAMP: [int(stamp)], F.RATING: [float(rating)]})
    return rows


def transform(splits: dict, data_dir: str, root: str) -> tuple:
    """Analyses the 'fit' split, transforms every split to gzipped TFRecords under root.

    Returns:
      (TFTransformOutput, {split: [file]}).
    """
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(SPEC))
    files = {}
    with tft_beam.Context(temp_dir=os.path.join(root, "tmp")):
        transform_fn = (raw_rows(splits["fit"], data_dir), metadata) | tft_beam.AnalyzeDataset(F.preprocessing_fn)
        _ = transform_fn | tft_beam.WriteTransformFn(os.path.join(root, "transform"))
        for name, ratings in splits.items():
            rows, out_metadata = ((raw_rows(ratings, data_dir), metadata), transform_fn) | tft_beam.TransformDataset()
            coder = tft.coders.ExampleProtoCoder(out_metadata.schema)
            files[name] = [os.path.join(root, f"{name}.gz")]
            with tf.io.TFRecordWriter(files[name][0], options="GZIP") as writer:
                for row in rows:
                    writer.write(coder.encode(row))
    metadata_io.write_metadata(metadata, os.path.join(root, "transform", tft.TFTransformOutput.RAW_METADATA_DIR))
    return tft.TFTransformOutput(os.path.join(root, "transform")), files


def test_metrics(predict, dataset) -> dict:
    """RMSE, MAE (and AUC of the like head when predict gives one) over a test dataset."""
    ratings, predictions, likes = [], [], []
    for batch in dataset:
        out = predict(batch)
        ratings.append(batch[F.RATING].numpy())
        predictions.append(out["rating"].numpy())
        if "like_logit" in out:
            likes.append(out["like_logit"].numpy())
    y, p = np.concatenate(ratings), np.concatenate(predictions)
    result = {"rmse": float(np.sqrt(np.mean((y - p) ** 2))), "mae": float(np.mean(np.abs(y - p)))}
    if likes:
        auc = tf.keras.metrics.AUC(from_logits=True)
        auc.update_state(y >= F.LIKED_THRESHOLD, np.concatenate(likes))
        result["auc"] = float(auc.result())
    return result


def biased_mf(tft_output, files, seed: int, dim: int = 32, l2: float = 5e-5) -> dict:
    """Biased matrix factorisation: mean + b_u + b_m + <p_u, q_m>, Adam, early stopping."""
    tf.keras.utils.set_random_seed(seed)
    n_users = tft_output.num_buckets_for_transformed_feature("user_id_xf")
    n_movies = tft_output.num_buckets_for_transformed_feature("movie_id_xf")
    reg = tf.keras.regularizers.l2(l2)
    user, movie = tf.keras.Input([], dtype=tf.int64), tf.keras.Input([], dtype=tf.int64)
    p, q = (tf.keras.layers.Embedding(n, dim, embeddings_regularizer=reg) for n in (n_users, n_movies))
    bu, bm = (tf.keras.layers.Embedding(n, 1, embeddings_initializer="zeros") for n in (n_users, n_movies))
    mean = M.mean_rating(files["fit"], tft_output)
    out = tf.reduce_sum(p(user) * q(movie), axis=1) + bu(user)[:, 0] + bm(movie)[:, 0] + mean
    model = tf.keras.Model([user, movie], out)
    model.compile(tf.keras.optimizers.Adam(0.005), "mse", metrics=[tf.keras.metrics.RootMeanSquaredError("rmse")])

    def pairs(split, shuffle=False):
        return F.dataset(files[split], tft_output, 1024, shuffle).map(
            lambda b: ((b["user_id_xf"], b["movie_id_xf"]), b[F.RATING]))
    model.fit(pairs("fit", True), validation_data=pairs("val"), epochs=40, verbose=0, callbacks=[
        tf.keras.callbacks.EarlyStopping("val_rmse", patience=RankingConfig.patience, restore_best_weights=True)])
    return test_metrics(lambda b: {"rating": model((b["user_id_xf"], b["movie_id_xf"]))},
                        F.dataset(files["test"], tft_output, 4096, shuffle=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", help="ml-100k directory (default: $MOVIELENS_DIR or the shared copy)")
    parser.add_argument("--seeds", type=int, default=3, help="training runs per model; medians are reported")
    parser.add_argument("--out", default=OUT, help="where the JSON goes")
    parser.add_argument("--config", default="{}", help='ranking config overrides for both DNN and DCN, '
                        'as JSON, e.g. \'{"l2": 1e-4}\' (keys: RankingConfig, models/ranking/constants.py)')
    parser.add_argument("--work-dir", help="keeps the transformed splits; a rerun with it skips Transform")
    args = parser.parse_args()
    data_dir = baselines.find_data_dir(args.data_dir)
    if not data_dir:
        sys.exit("No ml-100k found: pass --data-dir /path/to/ml-100k or set MOVIELENS_DIR.")
    overrides = json.loads(args.config)
    configs = {"dnn": RankingConfig.of({**overrides, "cross_layers": 0}), "dcn": RankingConfig.of(overrides)}
    start = time.monotonic()
    train, test = baselines.stack_split(data_dir)
    val_rows = np.random.default_rng(0).permutation(len(train))[: len(train) // 10]
    val = train.iloc[val_rows]
    splits = {"fit": train.drop(index=train.index[val_rows]), "val": val, "test": test}
    root = args.work_dir or tempfile.mkdtemp(prefix="ranking-bench-")
    if os.path.exists(os.path.join(root, "test.gz")):  # transformed by an earlier run with this work dir
        tft_output = tft.TFTransformOutput(os.path.join(root, "transform"))
        files = {name: [os.path.join(root, f"{name}.gz")] for name in splits}
    else:
        tft_output, files = transform(splits, data_dir, root)
    print(f"Transform done in {time.monotonic() - start:.0f} s", flush=True)

    runs = {"global_mean": [], "mf": [], "dnn": [], "dcn": []}
    mean = M.mean_rating(files["fit"], tft_output)
    runs["global_mean"].append(test_metrics(lambda b: {"rating": tf.fill(tf.shape(b[F.RATING]), mean)},
                                            F.dataset(files["test"], tft_output, 4096, shuffle=False)))
    fn_args = type("FnArgs", (), {"train_files": files["fit"], "eval_files": files["val"],
                                  "model_run_dir": os.path.join(root, "run")})
    for seed in range(args.seeds):
        runs["mf"].append(biased_mf(tft_output, files, seed))
        for name, config in configs.items():
            tf.keras.utils.set_random_seed(seed)
            model = M.build(tft_output, config, mean)
            training.fit(model, fn_args, tft_output, config.batch_size, config.epochs, M.early_stopping(config))
            runs[name].append(test_metrics(model, F.dataset(files["test"], tft_output, 4096, shuffle=False)))
            print(seed, name, runs[name][-1], flush=True)
        print(seed, "mf", runs["mf"][-1], flush=True)

    def median(values):
        return {k: float(np.median([v[k] for v in values])) for k in values[0]}
    result = {
        "models": {name: {**median(values), "runs": values} for name, values in runs.items()},
        "protocol": "ML-100K, reference random 80/20 split (default_rng(42)); 10% of train held out for early "
                    "stopping; medians over seeds",
        "config": {"seeds": args.seeds, "overrides": overrides, "dcn": {k: getattr(configs["dcn"], k) for k in (
            "embedding_dim", "deep_layers", "cross_layers", "structure", "projection_dim", "rating_weight",
            "liked_weight", "negative_weight", "l2", "learning_rate", "batch_size", "patience")}},
        "seconds": time.monotonic() - start,
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print({name: round(v["rmse"], 4) for name, v in result["models"].items()}, "->", args.out)


if __name__ == "__main__":
    main()
