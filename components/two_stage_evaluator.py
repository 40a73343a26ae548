"""TwoStageEvaluator: blesses a ranking model only when it improves the served order.

On the eval split (the retrieval evaluator's protocol) it measures the retrieval model's
top candidates ordered by the ranking model's `score` and by retrieval's own order (recall
and NDCG at 10 and 100; `evaluation`/metrics.json and ML Metadata), and blesses when both
`rating_blessing` and `retrieval_blessing` are blessed and the NDCG@10 gain reaches `min_ndcg_gain`.
"""
import os
from typing import Dict, List, Tuple

import numpy as np
import tensorflow as tf
from tfx import v1 as tfx

from components import retrieval_evaluator as RE
from components.examples import read_catalogue, read_pairs
from models import metrics

KS = (10, 100)


def two_stage_lists(retrieval_dir: str, ranking_dir: str, users: List[bytes], index: Dict[bytes, int],
                    batch: int = 64) -> Dict[str, np.ndarray]:
    """int [U, n] catalogue indices of each user's candidates in the retrieval order and in
    the ranking model's `score` order (-1: no movie, or one outside `index`). As the client
    does, only the candidates retrieval offers (finite scores) are ranked."""
    retrieve = tf.saved_model.load(retrieval_dir).signatures["serving_default"]
    rank = tf.saved_model.load(ranking_dir).signatures["serving_default"]
    lists = {"retrieval": [], "ranking": []}
    for start in range(0, len(users), batch):
        out = retrieve(user_id=tf.constant(users[start:start + batch]))
        offered = np.isfinite(out["scores"].numpy())  # [b, n]; -inf: nothing left to offer
        movies = out["movie_ids"].numpy()
        rows = np.repeat(np.array(users[start:start + batch], dtype=object), offered.sum(axis=1))
        scores = np.full(movies.shape, -np.inf, np.float32)
        scores[offered] = rank(user_id=tf.constant(list(rows), tf.string),
                               movie_id=tf.constant(list(movies[offered]), tf.string))["score"].numpy()
        ids = np.where(offered, np.vectorize(lambda m: index.get(m, -1), otypes=[np.int64])(movies), -1)
        lists["retrieval"].append(ids)
        lists["ranking"].append(np.take_along_axis(ids, np.argsort(-scores, axis=1, kind="stable"), axis=1))
    return {name: np.concatenate(rows) for name, rows in lists.items()}


def two_stage_metrics(retrieval_dir: str, ranking_dir: str, users: List[bytes], relevant: List[set],
                      index: Dict[bytes, int]) -> Tuple[Dict[str, dict], int]:
    """Metrics of both orders at KS, each cut-off at most the lists' width (a small catalogue),
    and the first cut-off, the one the blessing compares NDCG at."""
    lists = two_stage_lists(retrieval_dir, ranking_dir, users, index)
    ks = metrics.cut_offs(KS, lists["ranking"].shape[1])
    return {name: metrics.ranking_metrics(top, relevant, ks) for name, top in lists.items()}, ks[0]


def bless(ranked: float, alone: float, ratings_blessed: bool, min_ndcg_gain: float) -> Tuple[bool, str]:
    """(blessed, why): the two-stage NDCG@10 must reach retrieval's plus the gain, and TFMA
    must have blessed the ratings."""
    blessed = ratings_blessed and ranked >= alone + min_ndcg_gain
    return blessed, (f"two-stage NDCG {ranked:.4f} against retrieval alone {alone:.4f} (needed gain "
                     f"{min_ndcg_gain:.4f}); ratings {'blessed' if ratings_blessed else 'NOT blessed'} by the "
                     "TFMA Evaluator")


@tfx.dsl.components.component
def TwoStageEvaluator(
        ranking_model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model],
        retrieval_model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model],
        examples: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Examples],
        catalogue: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Examples],
        rating_blessing: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ModelBlessing],
        retrieval_blessing: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ModelBlessing],
        evaluation: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.ModelEvaluation],
        blessing: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.ModelBlessing],
        min_ndcg_gain: tfx.dsl.components.Parameter[float] = 0.0) -> None:
    """Measures the two-stage order against retrieval's; blesses per the module docstring."""
    movies = read_catalogue(catalogue.uri)
    index = {movie: i for i, movie in enumerate(movies["ids"])}
    users, relevant = RE.relevance(read_pairs(examples.uri, "eval"), index)
    result, cut = two_stage_metrics(os.path.join(retrieval_model.uri, "Format-Serving"),
                                    os.path.join(ranking_model.uri, "Format-Serving"), users, relevant, index)
    ranked, alone = result["ranking"][f"ndcg@{cut}"], result["retrieval"][f"ndcg@{cut}"]
    blessed, why = bless(ranked, alone, int(rating_blessing.get_int_custom_property("blessed")) == 1, min_ndcg_gain)
    if int(retrieval_blessing.get_int_custom_property("blessed")) != 1:  # its features read those towers
        blessed, why = False, why + "; the retrieval model it was trained with was NOT blessed"
    properties = {f"{name}_{key}": value for name, values in result.items() for key, value in values.items()}
    RE.record(evaluation, result, properties, blessing, ranking_model, blessed, why, "TwoStageEvaluator")
