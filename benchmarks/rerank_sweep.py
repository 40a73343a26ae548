"""Re-ranker configs compared on validation data: how many candidates it orders, and its shape.

    python -m benchmarks.quality --validation     # once: the validation pipeline run
    python -m benchmarks.rerank_sweep --candidates 100 200 --variants '{"deep32": {"list_deep_layers": [32]}}'

On the train split of a pipeline run (by default the --validation run of
benchmarks/quality.py, whose eval split is a fifth of the real train split), as the
ranking Trainer does: holds out a share of each user's movies, trains a retrieval model on
the rest, builds the listwise training lists of N candidates and fits the re-ranker. It
then orders each validation user's top N candidates of the run's own (served) retrieval
model and scores the top 100 over the whole catalogue (benchmarks/PROTOCOL.md), beside
EASE, the retrieval order and the EASE feature alone. Writes
benchmarks/results/rerank_sweep.json.
"""
import argparse
import json
import os
import types

import numpy as np
import tensorflow as tf

from benchmarks import baselines
from benchmarks.quality import RESULTS, newest
from benchmarks.retrieval_sweep import transformed_run
from models import features as F
from models import metrics
from models.ranking import candidates as C
from models.ranking import model as M
from models.ranking import relations as R
from models.ranking.constants import RankingConfig
from models.retrieval import model as RM


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", default="outputs/bench-quality/validation", help="a pipeline run")
    parser.add_argument("--candidates", type=int, nargs="+", default=[100, 200], help="candidates per list (N)")
    parser.add_argument("--variants", default='{"default": {}}', help="JSON: name -> ranking config overrides")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="re-ranker seeds of each variant")
    args = parser.parse_args()
    tft_output, files, sizes = transformed_run(args.output_dir)
    tables = RM.tables(tft_output, files["train"], sizes)
    train, test = tables["history"], RM.tables(tft_output, files["eval"], sizes)["history"]
    users = np.array([u for u, movies in enumerate(test) if len(movies)], np.int64)
    relevant = [set(test[u].tolist()) for u in users]
    num_users, num_movies = sizes[F.USER_ID], sizes[F.MOVIE_ID]
    seen = C.interaction_matrix(train, num_movies)
    user_ids, movie_ids = (np.array(tft_output.vocabulary_by_name(F.vocabulary_name(key)), dtype=object)
                           for key in (F.USER_ID, F.MOVIE_ID))
    genres = R.genre_matrix(tables["bags"][F.MOVIE_GENRES], sizes[F.MOVIE_GENRES])
    results = {}

    def score(name: str, top: np.ndarray) -> None:
        results[name] = {k: round(v, 4) for k, v in metrics.ranking_metrics(top[:, :100], relevant, (10, 100)).items()
                         if k in ("recall@10", "ndcg@10", "recall@100")}
        print(name, results[name], flush=True)

    score("ease", baselines.top_k_masked(baselines.ease_scores(seen, 500.0)[users], seen[users], 100))
    served = tf.saved_model.load(newest(f"{args.output_dir}/pipeline/RetrievalTrainer/model/*") + "/Format-Serving")
    queries = C.pad_rows(served.embed_users(user_id=tf.constant(list(user_ids)))["embeddings"].numpy(), num_users)
    embeddings = C.pad_rows(served.movie_embeddings()["embeddings"].numpy(), num_movies)
    base = RankingConfig.of({})
    kept, held = C.holdout(train, base.holdout, base.holdout_seed)
    run_dir = os.path.join(args.output_dir, "rerank_sweep")
    tf.io.gfile.makedirs(run_dir)
    train_file = C.held_out_examples(files["train"], tft_output, held, os.path.join(run_dir, "train.gz"))
    tf.keras.utils.set_random_seed(0)
    holdout_towers = RM.train(tft_output, types.SimpleNamespace(
        train_files=[train_file], eval_files=files["eval"], model_run_dir=run_dir), base.retrieval)
    relations = None
    for n in args.candidates:
        top = C.top_candidates(queries[users], embeddings[:len(movie_ids)], [train[u] for u in users], n)
        score(f"retrieval-n{n}", top)
        for name, overrides in json.loads(args.variants).items():
            config = RankingConfig.of({**overrides, "num_candidates": n, "verbose": 0})
            lists = C.training_lists(holdout_towers, user_ids, movie_ids, kept, held, genres, config)
            if relations is None:  # the serving features: the whole train split, the served towers
                relations = R.Relations(*C.pairs(train), num_users, num_movies, queries, embeddings, genres,
                                        lists["lambda"], base.neighbours)
            features = R.features_of(relations, users, top)
            ease = np.argsort(-features[:, :, R.NAMES.index("ease")], axis=1, kind="stable")
            score(f"ease-feature-n{n}", np.take_along_axis(top, ease, axis=1))
            for seed in args.seeds:
                tf.keras.utils.set_random_seed(seed)
                model, _ = M.fit_listwise(lists["features"], lists["labels"], config)
                order = np.argsort(-model(tf.constant(features)).numpy(), axis=1, kind="stable")
                score(f"{name}-n{n}-s{seed}", np.take_along_axis(top, order, axis=1))
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "rerank_sweep.json"), "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
