"""What users get, scored: the served answer, asked through the gRPC client, beside
popularity, EASE and retrieval alone, for the same users of the pipeline's own split.

    python -m benchmarks.quality                  # pipeline on ML-100K, serve, score the eval split
    python -m benchmarks.quality --reuse          # score the last run in --output-dir again
    python -m benchmarks.quality --validation     # the same on validation data carved out of train

The pipeline's pushed models run behind serving/server.py; every eval user is asked
through serving.client over gRPC for 100 movies: `served` is the client's default
(ranking) order, `retrieval` the retrieval model's own order of the same candidates,
`fused` the two fused. Popularity and EASE score the same users on the same split, EASE
with its L2 weight chosen on a validation split carved out of train (never on eval).
Protocol (benchmarks/PROTOCOL.md): full catalogue, training movies masked, every eval
rating relevant; recall@10, NDCG@10 (binary gains), recall@100, averaged over users.

`--validation` is how the defaults were chosen: it writes the pipeline's train split as a
MovieLens directory, runs the pipeline on it with another split seed (so its eval split
is a fifth of the original train split) and scores that, never touching the eval split.

Writes benchmarks/results/quality.json (quality_validation.json with --validation).
"""
import argparse
import contextlib
import glob
import json
import os
import shutil
import time
from typing import Dict, Iterator, List

import numpy as np
import pandas as pd
import tensorflow as tf

from benchmarks import baselines
from components import examples as E
from components import retrieval_evaluator as RE
from models import metrics
from pipeline import configs, data, local_runner

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
KEYS = ("recall@10", "ndcg@10", "recall@100")
EASE_LAMBDAS = (50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0)
VALIDATION_SEED = 43  # the split seed of the --validation run (the pipeline's is configs.SPLIT_SEED)


def newest(pattern: str) -> str:
    """The artifact directory of the latest execution matching `pattern`."""
    found = sorted(glob.glob(pattern), key=lambda path: int(os.path.basename(path)))
    if not found:
        raise FileNotFoundError(f"Nothing matches {pattern}; run without --reuse first.")
    return found[-1]


def baseline_metrics(train: pd.DataFrame, test: pd.DataFrame, movies: List[str]) -> Dict[str, dict]:
    """Popularity and EASE on (train, test); EASE's lambda is chosen on a fifth of train."""
    def score(split: baselines.Interactions, lam: float) -> dict:
        top = baselines.top_k_masked(baselines.ease_scores(split.train, lam), split.train, k=100)
        return metrics.ranking_metrics(top, split.relevant)

    held = np.random.default_rng(0).random(len(train)) < 0.2
    inner = baselines.interactions(train[~held], train[held], movies)
    by_lambda = {lam: score(inner, lam)["ndcg@10"] for lam in EASE_LAMBDAS}
    lam = max(by_lambda, key=by_lambda.get)
    split = baselines.interactions(train, test, movies)
    popularity = baselines.top_k_masked(baselines.popularity_scores(split.train), split.train, k=100)
    return {"popularity": metrics.ranking_metrics(popularity, split.relevant),
            "ease": {**score(split, lam), "lambda": lam, "validation_ndcg@10_by_lambda": by_lambda}}


@contextlib.contextmanager
def serving(serving_dir: str, work_dir: str) -> Iterator:
    """A RecommenderClient of serving/server.py (a subprocess) over the pushed models in `serving_dir`."""
    from serving.client import RecommenderClient
    from serving.config import write_config
    from serving.server import running_server

    config = write_config(os.path.join(work_dir, "models.config"),
                          {name: os.path.join(serving_dir, name) for name in ("retrieval", "ranking")})
    with running_server(config) as target, contextlib.closing(RecommenderClient(target, timeout=60)) as client:
        client.wait_until_ready(timeout=300)
        yield client


def catalogue_rows(answers: Dict[str, List[dict]], users: List[str], index: Dict[bytes, int], k: int) -> list:
    """Each user's answer as k catalogue indices (-1: not in the catalogue, or no item)."""
    return [[index.get(item["movie_id"].encode(), -1) for item in answers[user]] + [-1] * (k - len(answers[user]))
            for user in users]


def served_metrics(serving_dir: str, users: List[bytes], relevant: list, index: Dict[bytes, int],
                   work_dir: str) -> Dict[str, dict]:
    """The client's answers over gRPC (serving/server.py over the pushed models), in each order."""
    lists: Dict[str, list] = {"served": [], "retrieval": [], "fused": []}
    with serving(serving_dir, work_dir) as client:
        for start in range(0, len(users), 100):
            chunk = [u.decode() for u in users[start:start + 100]]
            for name, order in (("served", "ranking"), ("retrieval", "retrieval"), ("fused", "fused")):
                answers = client.recommend_many(chunk, k=100, order=order)
                lists[name] += catalogue_rows(answers, chunk, index, 100)
    return {name: metrics.ranking_metrics(np.array(rows), relevant, ks=(10, 100)) for name, rows in lists.items()}


def write_train_split(examples: str, data_dir: str, out: str) -> str:
    """A MovieLens 100K directory holding only the train split's ratings of `examples`."""
    spec = {**E.PAIR_SPEC, "rating": tf.io.FixedLenFeature([], tf.float32),
            "timestamp": tf.io.FixedLenFeature([], tf.int64)}
    os.makedirs(out, exist_ok=True)
    for name in os.listdir(data_dir):
        if name != "u.data" and os.path.isfile(os.path.join(data_dir, name)):
            shutil.copy(os.path.join(data_dir, name), out)
    with open(os.path.join(out, "u.data"), "w") as f:
        for batch in E.read_examples(examples, "train", spec):
            for user, movie, rating, stamp in zip(*(batch[k].numpy() for k in ("user_id", "movie_id", "rating",
                                                                                "timestamp")), strict=True):
                f.write(f"{user.decode()}\t{movie.decode()}\t{int(rating)}\t{stamp}\n")
    return out


def score(output_dir: str) -> dict:
    """Every model's metrics on the eval split of the pipeline run in `output_dir`."""
    root = os.path.join(output_dir, "pipeline")
    examples = newest(f"{root}/MovieLensExampleGen/examples/*")
    movies = E.read_catalogue(newest(f"{root}/MovieCatalogueGen/catalogue/*"))
    pairs = {split: E.read_pairs(examples, split) for split in ("train", "eval")}
    frame = lambda split: pd.DataFrame({"user_id": [u.decode() for u in pairs[split][0]],  # noqa: E731
                                        "movie_id": [m.decode() for m in pairs[split][1]]})
    models = baseline_metrics(frame("train"), frame("eval"), [m.decode() for m in movies["ids"]])
    index = {m: i for i, m in enumerate(movies["ids"])}
    users, relevant = RE.relevance(pairs["eval"], index)
    models.update(served_metrics(os.path.join(output_dir, "serving"), users, relevant, index, output_dir))
    return models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", help="MovieLens directory (default: $MOVIELENS_DIR or a cached download)")
    parser.add_argument("--output-dir", default="outputs/bench-quality", help="pipeline outputs")
    parser.add_argument("--reuse", action="store_true", help="score the last run instead of running the pipeline")
    parser.add_argument("--validation", action="store_true",
                        help="score on validation data carved out of train (to choose hyper-parameters)")
    args = parser.parse_args()
    data_dir = str(data.resolve(args.data_dir))
    start = time.monotonic()
    output_dir = args.output_dir
    if not args.reuse:
        local_runner.run(data_dir, output_dir)
    if args.validation:
        examples = newest(f"{output_dir}/pipeline/MovieLensExampleGen/examples/*")
        output_dir = os.path.join(args.output_dir, "validation")
        if not args.reuse:
            train_dir = write_train_split(examples, data_dir, os.path.join(output_dir, "data"))
            configs.SPLIT_SEED = VALIDATION_SEED  # a fifth of the train split becomes the eval split
            local_runner.run(train_dir, output_dir)
    models = score(output_dir)
    result = {"protocol": ("validation split carved out of the pipeline's train split" if args.validation else
                           "pipeline's seeded random 80/20 split") + "; full catalogue, training movies masked",
              "models": {name: {**{k: round(m[k], 4) for k in KEYS}, "all": m} for name, m in models.items()},
              "seconds": round(time.monotonic() - start, 1)}
    path = os.path.join(RESULTS, "quality_validation.json" if args.validation else "quality.json")
    os.makedirs(RESULTS, exist_ok=True)
    with open(path, "w") as f:
        json.dump(result, f, indent=1)
    for name, m in result["models"].items():
        print(f"{name:11s} " + "  ".join(f"{k} {m[k]:.3f}" for k in KEYS))
    print("Wrote", path)


if __name__ == "__main__":
    main()
