"""Retrieval configs compared on validation data: how the retrieval defaults were chosen.

    python -m benchmarks.quality --validation     # once: the validation pipeline run
    python -m benchmarks.retrieval_sweep --variants '{"t0.1": {"temperature": 0.1}}' --seeds 0 1

Trains the two-tower model once per (variant, seed) on the train split of a pipeline run
(by default the --validation run of benchmarks/quality.py, whose eval split is a fifth of
the real train split) and scores every eval user's top 100 over the whole catalogue,
training movies masked (benchmarks/PROTOCOL.md), beside EASE on the same users.
Writes benchmarks/results/retrieval_sweep.json.
"""
import argparse
import json
import os
import time
import types

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from benchmarks import baselines
from benchmarks.quality import RESULTS, newest
from models import features as F
from models import metrics
from models.ranking import candidates
from models.retrieval import model as RM
from models.retrieval.constants import RetrievalConfig

KEYS = ("recall@10", "ndcg@10", "recall@100")


def transformed_run(output_dir: str) -> tuple:
    """(tft_output, {split: file patterns}, {feature: ids}) of a pipeline run's Transform outputs."""
    root = os.path.join(output_dir, "pipeline")
    tft_output = tft.TFTransformOutput(newest(f"{root}/Transform/transform_graph/*"))
    examples = newest(f"{root}/Transform/transformed_examples/*")
    sizes = {key: F.vocabulary_size(tft_output, key) for key in F.VOCAB_FEATURES}
    sizes.update({key: F.bucket_count(key) for key in F.BUCKET_FEATURES})
    return tft_output, {split: [f"{examples}/Split-{split}/*"] for split in ("train", "eval")}, sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", default="outputs/bench-quality/validation", help="a pipeline run")
    parser.add_argument("--variants", default='{"default": {}}', help="JSON: name -> retrieval config overrides")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds of each variant")
    parser.add_argument("--ease-lambda", type=float, default=500.0, help="EASE's L2 weight")
    args = parser.parse_args()
    tft_output, files, sizes = transformed_run(args.output_dir)
    train, test = (RM.tables(tft_output, files[split], sizes)["history"] for split in ("train", "eval"))
    users = np.array([u for u, movies in enumerate(test) if len(movies)], np.int64)
    seen = candidates.interaction_matrix(train, sizes[F.MOVIE_ID])  # [all users, movies]
    relevant = [set(test[u].tolist()) for u in users]

    def score(scores: np.ndarray) -> dict:
        top = baselines.top_k_masked(scores, seen[users], 100)
        return {k: round(v, 4) for k, v in metrics.ranking_metrics(top, relevant, (10, 100)).items() if k in KEYS}

    results = {"ease": score(baselines.ease_scores(seen, args.ease_lambda)[users])}
    print("ease", results["ease"], flush=True)
    for name, config in json.loads(args.variants).items():
        for seed in args.seeds:
            tf.keras.utils.set_random_seed(seed)
            start, run_dir = time.monotonic(), os.path.join(args.output_dir, "sweep", f"{name}-{seed}")
            towers = RM.train(tft_output, types.SimpleNamespace(train_files=files["train"], eval_files=files["eval"],
                                                                model_run_dir=run_dir), RetrievalConfig.of(config))
            queries = towers.model.query({F.transformed_name(F.USER_ID): tf.constant(users)}).numpy()
            movies = towers.movie_embeddings()["embeddings"].numpy()
            scores = np.full((len(users), seen.shape[1]), np.finfo(np.float32).min, np.float32)  # OOV movies
            scores[:, :len(movies)] = queries @ movies.T
            results[f"{name}-{seed}"] = {**score(scores), "config": config, "seconds": round(time.monotonic() - start)}
            print(f"{name}-{seed}", results[f"{name}-{seed}"], flush=True)
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "retrieval_sweep.json"), "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
