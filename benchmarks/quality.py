"""Retrieval quality on ML-100K, side by side in one run: popularity, EASE (lambda 500),
the pipeline's two-tower retrieval model, and the two-stage system (retrieval top-100
re-ranked by the ranking model: by predicted rating, like probability, or like probability
fused with the retrieval order). Protocol of ../shared/STACK.md on the pipeline's own
seeded random 80/20 split: each eval user ranks the whole catalogue with their training
movies masked; every eval rating is relevant. STACK.md's exact split is also scored for
the baselines, to show the two splits agree.

    python benchmarks/quality.py                      # runs the pipeline, then scores
    python benchmarks/quality.py --reuse              # scores the last run in --output-dir

Writes benchmarks/results/quality.json.
"""
import argparse
import glob
import json
import os
import sys
import time

import numpy as np
import pandas as pd
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import baselines  # noqa: E402
from components import retrieval_evaluator as RE  # noqa: E402
from models import metrics  # noqa: E402
from pipeline import data, local_runner  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "quality.json")
KEYS = ("recall@10", "ndcg@10", "recall@100")
RRF_K = 60  # reciprocal rank fusion constant
ORDERS = ("rating", "like_probability", "fused")  # how the two-stage system orders the 100 candidates


def newest(pattern: str) -> str:
    """The artifact directory of the latest execution matching `pattern`."""
    found = sorted(glob.glob(pattern), key=lambda path: int(os.path.basename(path)))
    if not found:
        raise FileNotFoundError(f"Nothing matches {pattern}; run without --reuse first.")
    return found[-1]


def baseline_metrics(train: pd.DataFrame, test: pd.DataFrame, movies: list) -> dict:
    split = baselines.interactions(train, test, movies)
    return {name: metrics.ranking_metrics(metrics.top_k_masked(scores(split.train), split.train, k=100),
                                          split.relevant)
            for name, scores in (("popularity", baselines.popularity_scores), ("ease", baselines.ease_scores))}


def two_stage(retrieval_dir: str, ranking_dir: str, users: list, relevant: list, index: dict,
              rank_by: str) -> dict:
    """Each user's retrieval top-100 re-ordered by the ranking model's `rank_by` output."""
    retrieve = tf.saved_model.load(retrieval_dir).signatures["serving_default"]
    rank = tf.saved_model.load(ranking_dir).signatures["serving_default"]
    rows = []
    for user in users:
        movies = retrieve(user_id=tf.constant([user]))["movie_ids"][0]  # [100]
        ranked = rank(user_id=tf.fill(tf.shape(movies), user), movie_id=movies)
        if rank_by == "fused":  # reciprocal rank fusion of the retrieval and like-probability orders
            like_rank = np.argsort(np.argsort(-ranked["like_probability"].numpy(), kind="stable"))
            scores = 1 / (RRF_K + np.arange(len(like_rank))) + 1 / (RRF_K + like_rank)
        else:
            scores = ranked[rank_by].numpy()
        rows.append([index.get(m, -1) for m in movies.numpy()[np.argsort(-scores, kind="stable")]])
    return metrics.ranking_metrics(np.array(rows), relevant, ks=(10, 100))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", help="ml-100k directory (default: $MOVIELENS_DIR or a cached download)")
    parser.add_argument("--output-dir", default="outputs/bench-quality", help="pipeline outputs")
    parser.add_argument("--reuse", action="store_true", help="score the last run instead of running the pipeline")
    parser.add_argument("--rank-by", default="fused", choices=ORDERS,
                        help="two_stage's order: a ranking model output, or that fused with the retrieval order "
                             "(all three are recorded under two_stage_by)")
    args = parser.parse_args()
    data_dir = data.resolve(args.data_dir)
    start = time.monotonic()
    if not args.reuse:
        local_runner.run(data_dir, args.output_dir)
    root = os.path.join(args.output_dir, "pipeline")
    examples = newest(f"{root}/MovieLensExampleGen/examples/*")
    movies = RE.read_catalogue(newest(f"{root}/MovieCatalogueGen/catalogue/*"))
    pairs = {split: RE.read_pairs(examples, split) for split in ("train", "eval")}
    frame = lambda split: pd.DataFrame({"user_id": [u.decode() for u in pairs[split][0]],  # noqa: E731
                                        "movie_id": [m.decode() for m in pairs[split][1]]})
    movie_ids = [m.decode() for m in movies["ids"]]
    models = baseline_metrics(frame("train"), frame("eval"), movie_ids)
    bruteforce = os.path.join(newest(f"{root}/IndexBuilder/bruteforce_model/*"), "Format-Serving")
    scann_dir = os.path.join(newest(f"{root}/IndexBuilder/scann_model/*"), "Format-Serving")
    models["retrieval"] = RE.evaluate(bruteforce, scann_dir, pairs["train"], pairs["eval"], movies)
    index = {m: i for i, m in enumerate(movies["ids"])}
    ranking = os.path.join(newest(f"{root}/RankingTrainer/model/*"), "Format-Serving")
    by = {order: two_stage(bruteforce, ranking, *RE.relevance(pairs["eval"], index), index, order)
          for order in ORDERS}
    models["two_stage"] = by[args.rank_by]
    reference = baseline_metrics(*baselines.stack_split(data_dir), baselines.movie_ids(data_dir))
    result = {"protocol": "pipeline's seeded random 80/20 split; full-catalogue ranking, training movies masked",
              "two_stage_rank_by": args.rank_by,
              "models": {name: {**{k: round(m[k], 4) for k in KEYS}, "all": m} for name, m in models.items()},
              "two_stage_by": {order: {k: round(m[k], 4) for k in KEYS} for order, m in by.items()},
              "stack_split_baselines": {name: {k: round(m[k], 4) for k in KEYS} for name, m in reference.items()},
              "seconds": round(time.monotonic() - start, 1)}
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "w") as f:
        json.dump(result, f, indent=1)
    for name, m in result["models"].items():
        print(f"{name:11s} " + "  ".join(f"{k} {m[k]:.3f}" for k in KEYS))
    print("Wrote", RESULTS)


if __name__ == "__main__":
    main()
