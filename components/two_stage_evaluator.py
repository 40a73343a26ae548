"""TwoStageEvaluator: blesses a ranking model only when it improves the served order. On the eval split (the
retrieval evaluator's protocol) it measures retrieval's top candidates ordered by the ranking model's `score`
and by retrieval's own (recall, NDCG at 10 and 100) and the RMSE of its `rating` and the last blessed model's
(`evaluation`/metrics.json, ML Metadata). It blesses when `retrieval_blessing` is, the NDCG@10 gain reaches
`min_ndcg_gain` and the RMSE `rmse_ceiling` and the last's + `max_rmse_increase`; the last blessed model
itself is not measured again (components/retrieval_evaluator.py `unchanged`)."""
import os
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import tensorflow as tf
from tfx import v1 as tfx

from components import retrieval_evaluator as RE
from components.examples import read_catalogue, read_pairs
from models import features as F
from models import metrics

KS = (10, 100)


def serving(model) -> Callable:
    """The serving_default signature of a Model artifact's SavedModel."""
    return tf.saved_model.load(os.path.join(model.uri, "Format-Serving")).signatures["serving_default"]


def two_stage_lists(retrieve: Callable, rank: Callable, users: List[bytes], index: Dict[bytes, int],
                    batch: int = 64) -> Dict[str, np.ndarray]:
    """int [U, n] catalogue indices of each user's candidates in the retrieval order and in the ranking
    model's `score` order (-1: no movie, or one outside `index`), from the models' serving signatures.
    As the client does, only the candidates retrieval offers (finite scores) are ranked."""
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


def two_stage_metrics(retrieve: Callable, rank: Callable, users: List[bytes], relevant: List[set],
                      index: Dict[bytes, int]) -> Tuple[Dict[str, dict], int]:
    """Metrics of both orders at KS, each cut-off at most the lists' width (a small catalogue),
    and the first cut-off, the one the blessing compares NDCG at."""
    lists = two_stage_lists(retrieve, rank, users, index)
    ks = metrics.cut_offs(KS, lists["ranking"].shape[1])
    return {name: metrics.ranking_metrics(top, relevant, ks) for name, top in lists.items()}, ks[0]


def rmse(rank: Callable, users: np.ndarray, movies: np.ndarray, ratings: np.ndarray, batch: int = 4096) -> float:
    """Root mean squared error of the ranking signature's `rating` on (user, movie, rating) rows."""
    predicted = np.concatenate([rank(user_id=tf.constant(users[i:i + batch]), movie_id=tf.constant(
        movies[i:i + batch]))["rating"].numpy() for i in range(0, len(users), batch)])
    return float(np.sqrt(np.mean(np.square(predicted - ratings))))


def bless(ranked: float, alone: float, min_ndcg_gain: float, rating_rmse: float, baseline_rmse: Optional[float],
          rmse_ceiling: float, max_rmse_increase: float) -> Tuple[bool, str]:
    """(blessed, why) by the module docstring's rule (`baseline_rmse` None: no last model; NaN fails)."""
    limit = min(rmse_ceiling, np.inf if baseline_rmse is None else baseline_rmse + max_rmse_increase)
    last = "" if baseline_rmse is None else f", last blessed {baseline_rmse:.4f} + {max_rmse_increase:.4f}"
    return ranked >= alone + min_ndcg_gain and rating_rmse <= limit, (
        f"two-stage NDCG {ranked:.4f} against retrieval alone {alone:.4f} (needed gain {min_ndcg_gain:.4f}); "
        f"rating RMSE {rating_rmse:.4f} against at most {limit:.4f} (ceiling {rmse_ceiling:.4f}{last})")


@tfx.dsl.components.component
def TwoStageEvaluator(
        ranking_model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model],
        retrieval_model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model],
        examples: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Examples],
        catalogue: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Examples],
        retrieval_blessing: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ModelBlessing],
        evaluation: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.ModelEvaluation],
        blessing: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.ModelBlessing],
        baseline_model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model] = None,
        baseline_blessing: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ModelBlessing] = None,
        min_ndcg_gain: tfx.dsl.components.Parameter[float] = 0.0,
        rmse_ceiling: tfx.dsl.components.Parameter[float] = 1.1,
        max_rmse_increase: tfx.dsl.components.Parameter[float] = 0.01) -> None:
    """Measures the two-stage order and the ratings; blesses per the module docstring."""
    if RE.unchanged(ranking_model, baseline_model, baseline_blessing, evaluation, blessing, "TwoStageEvaluator"):
        return
    movies = read_catalogue(catalogue.uri)
    index = {movie: i for i, movie in enumerate(movies["ids"])}
    ratings = read_pairs(examples.uri, "eval", (F.USER_ID, F.MOVIE_ID, F.RATING))
    users, relevant = RE.relevance(ratings[:2], index)
    rank = serving(ranking_model)
    result, cut = two_stage_metrics(serving(retrieval_model), rank, users, relevant, index)
    result["ranking"]["rmse"] = rmse(rank, *ratings)
    baseline = rmse(serving(baseline_model), *ratings) if baseline_model else None
    blessed, why = bless(result["ranking"][f"ndcg@{cut}"], result["retrieval"][f"ndcg@{cut}"], min_ndcg_gain,
                         result["ranking"]["rmse"], baseline, rmse_ceiling, max_rmse_increase)
    if not any(retrieval_blessing.get_int_custom_property(key) for key in ("blessed", "unchanged")):  # its towers
        blessed, why = False, why + "; the retrieval model it was trained with was NOT blessed"
    properties = {f"{name}_{key}": value for name, values in result.items() for key, value in values.items()}
    RE.record(evaluation, {**result, "baseline_rmse": baseline}, properties, blessing, ranking_model, blessed, why,
              "TwoStageEvaluator")
