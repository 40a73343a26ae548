"""Cold start: what a new user gets from the n movies they give at request time.

    python -m benchmarks.cold_start             # pipeline on ML-100K, serve, score (about 25 minutes)
    python -m benchmarks.cold_start --reuse     # score the last run in --output-dir again

Protocol (benchmarks/PROTOCOL.md), on the pipeline's own split: every eval user with
training movies is asked for as a new user, under an id the model never saw
("new-<id>"), giving n of its training movies at request time (`history`; a seeded random
order per user, so the 5 given include the 3) for n in N; the rest of its training movies
are excluded, as the protocol masks them; its eval movies are relevant. A user with fewer
than n training movies gives all it has. Scored at 10 (recall, NDCG, binary gains):
  served        the client's answer over gRPC (serving/server.py over the pushed models,
                ranking order, 10 of the client's 200 candidates): retrieval's `retrieve_history` and
                ranking's `serve_history`; n = 0 is the popularity fallback
  popularity    the most-rated movies, training movies masked (the same for every n)
  ease_fold_in  EASE (fitted on the whole train split, L2 weight chosen as in
                benchmarks/quality.py) scoring the user's row of the n movies: x_n B
  known_user    the served answer for the same users by their real ids (their whole
                training history, no request history)

Writes benchmarks/results/cold_start.json and cold_start.png.
"""
import argparse
import json
import os
import time
from typing import Dict

import numpy as np
import pandas as pd
import scipy.sparse as sp

from benchmarks import baselines, quality
from components import retrieval_evaluator as RE
from models import metrics
from pipeline import data, local_runner

N = (0, 1, 3, 5, 10, 20)
SEED = 14
KEYS = ("recall@10", "ndcg@10")


def scored(rows: np.ndarray, relevant: list) -> Dict[str, float]:
    result = metrics.ranking_metrics(np.asarray(rows), relevant, ks=(10,))
    return {key: round(result[key], 4) for key in KEYS}


def score(output_dir: str, batch: int = 40) -> dict:
    """The figures of the module docstring for the pipeline run in `output_dir`; `batch` users a call
    (their exclusions together stay under the server's --max_exclusions)."""
    root = os.path.join(output_dir, "pipeline")
    examples = quality.newest(f"{root}/MovieLensExampleGen/examples/*")
    movies = RE.read_catalogue(quality.newest(f"{root}/MovieCatalogueGen/catalogue/*"))
    index = {m: i for i, m in enumerate(movies["ids"])}
    pairs = {split: RE.read_pairs(examples, split) for split in ("train", "eval")}
    rated: Dict[bytes, set] = {}
    for user, movie in zip(*pairs["train"], strict=True):
        rated.setdefault(user, set()).add(movie)
    users, relevant = RE.relevance(pairs["eval"], index)
    keep = [i for i, user in enumerate(users) if user in rated]
    users, relevant = [users[i] for i in keep], [relevant[i] for i in keep]
    rng = np.random.default_rng(SEED)
    order = {user: [sorted(rated[user])[j] for j in rng.permutation(len(rated[user]))]  # the first n are given
             for user in users}

    frame = lambda split: pd.DataFrame({"user_id": [u.decode() for u in pairs[split][0]],  # noqa: E731
                                        "movie_id": [m.decode() for m in pairs[split][1]]})
    lam = quality.baseline_metrics(frame("train"), frame("eval"), [m.decode() for m in movies["ids"]])["ease"]["lambda"]
    matrix = sp.csr_matrix((np.ones(len(pairs["train"][0])), (
        np.unique(pairs["train"][0], return_inverse=True)[1], [index[m] for m in pairs["train"][1]])),
        shape=(len(set(pairs["train"][0])), len(index)))
    matrix.data[:] = 1.0
    mask = sp.csr_matrix((np.ones(sum(len(rated[u]) for u in users)), (
        np.repeat(np.arange(len(users)), [len(rated[u]) for u in users]),
        [index[m] for u in users for m in sorted(rated[u])])), shape=(len(users), len(index)))
    given = lambda n: sp.csr_matrix((np.ones(sum(min(n, len(order[u])) for u in users)), (  # noqa: E731
        np.repeat(np.arange(len(users)), [min(n, len(order[u])) for u in users]),
        [index[m] for u in users for m in order[u][:n]])), shape=(len(users), len(index)))
    folded = baselines.ease_scores(matrix, lam, sp.vstack([given(n) for n in N]))  # [len(N) * U, I]
    counts = np.asarray(matrix.sum(axis=0)).ravel()
    popularity = scored(baselines.top_k_masked(np.tile(counts, (len(users), 1)), mask, k=10), relevant)

    result: dict = {"n": {}, "ease_lambda": lam, "users": len(users)}
    names = [u.decode() for u in users]
    with quality.serving(os.path.join(output_dir, "serving"), output_dir) as client:
        for i, n in enumerate(N):
            start, rows, paths = time.monotonic(), [], {}
            for at in range(0, len(names), batch):
                chunk = names[at:at + batch]
                new = [f"new-{u}" for u in chunk]
                answers = client.recommend_many(
                    new, k=10,
                    exclude={f"new-{u}": [m.decode() for m in order[u.encode()][n:]] for u in chunk},
                    history={f"new-{u}": [m.decode() for m in order[u.encode()][:n]] for u in chunk})
                rows += quality.catalogue_rows(answers, new, index, 10)
                for items in answers.values():
                    path = items[0]["path"] if items else "none"
                    paths[path] = paths.get(path, 0) + 1
            ease = baselines.top_k_masked(folded[i * len(users):(i + 1) * len(users)], mask, k=10)
            result["n"][str(n)] = {"served": scored(rows, relevant), "popularity": popularity,
                                   "ease_fold_in": scored(ease, relevant), "paths": paths,
                                   "served_seconds": round(time.monotonic() - start, 1)}
            print(n, result["n"][str(n)], flush=True)
        rows = []
        for at in range(0, len(names), batch):
            chunk = names[at:at + batch]
            rows += quality.catalogue_rows(client.recommend_many(chunk, k=10), chunk, index, 10)
        result["known_user"] = scored(rows, relevant)
    return result


def plot(result: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for axis, key in zip(axes, KEYS, strict=True):
        for name, style in (("served", "o-"), ("ease_fold_in", "s--"), ("popularity", ":")):
            axis.plot(N, [result["n"][str(n)][name][key] for n in N], style, label=name)
        axis.axhline(result["known_user"][key], color="grey", linestyle="-.", label="known user (served)")
        axis.set_xlabel("movies given at request time (n)")
        axis.set_ylabel(key)
        axis.set_xticks(N)
    axes[0].legend()
    figure.suptitle("ML-100K eval users asked for as new users")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", help="MovieLens directory (default: $MOVIELENS_DIR or a cached download)")
    parser.add_argument("--output-dir", default="outputs/bench-cold-start", help="pipeline outputs")
    parser.add_argument("--reuse", action="store_true", help="score the last run instead of running the pipeline")
    args = parser.parse_args()
    start, load = time.monotonic(), os.getloadavg()[0]
    if not args.reuse:
        local_runner.run(str(data.resolve(args.data_dir)), args.output_dir)
    result = score(args.output_dir)
    result.update(seconds=round(time.monotonic() - start, 1), load_average=[load, os.getloadavg()[0]],
                  protocol="pipeline's split; eval users asked for as new ids with n of their training movies "
                           "as request history, the rest excluded; see benchmarks/cold_start.py")
    os.makedirs(quality.RESULTS, exist_ok=True)
    path = os.path.join(quality.RESULTS, "cold_start.json")
    with open(path, "w") as f:
        json.dump(result, f, indent=1)
    plot(result, os.path.join(quality.RESULTS, "cold_start.png"))
    for n in N:
        row = result["n"][str(n)]
        print(f"n={n:2d} " + "  ".join(f"{name} {row[name]['recall@10']:.3f}/{row[name]['ndcg@10']:.3f}"
                                       for name in ("served", "popularity", "ease_fold_in")))
    print("known user", result["known_user"], "\nWrote", path)


if __name__ == "__main__":
    main()
