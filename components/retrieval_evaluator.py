"""RetrievalEvaluator: measures the retrieval models on the eval split (benchmarks/PROTOCOL.md) and
blesses them. Metrics (ranking metrics at 10/50/100, MRR, beyond-accuracy at 10, ScaNN's recall@10
against exact search) go to `evaluation`/metrics.json and ML Metadata. Blessed when recall@10 reaches
`recall_floor` and is not below the last blessed model's (re-measured on the same data) by more than
`max_regression`; Pushers push only blessed models. A model that is the last blessed one itself (an
unchanged re-run) is not measured again: its last verdict's metrics are recorded as NOT blessed,
`unchanged`, so it is not pushed a second time."""
import json
import math
import os
from typing import Dict, List, Optional, Tuple

import numpy as np
import tensorflow as tf
from tfx import v1 as tfx
from tfx.utils import io_utils

from components.examples import read_catalogue, read_pairs
from models import metrics

KS = (10, 50, 100)


def relevance(eval_: tuple, index: Dict[bytes, int]) -> Tuple[List[bytes], List[set]]:
    """The eval users (sorted) and, for each, the catalogue indices of their eval movies
    (-2 for a movie outside the catalogue: counted, never found)."""
    users = sorted(set(eval_[0]))
    relevant: Dict[bytes, set] = {user: set() for user in users}
    for user, movie in zip(*eval_, strict=True):
        relevant[user].add(index.get(movie, -2))
    return users, [relevant[user] for user in users]


def top_lists(model_dir: str, users: List[bytes], index: Dict[bytes, int], batch: int = 256) -> np.ndarray:
    """int [U, n] catalogue indices of each user's list from a retrieval SavedModel (-1 = not in `index`)."""
    import scann  # noqa: F401  the ScaNN model needs its ops

    serve = tf.saved_model.load(model_dir).signatures["serving_default"]
    lookup = np.vectorize(lambda m: index.get(m, -1), otypes=[np.int64])
    return np.concatenate([lookup(serve(user_id=tf.constant(users[i:i + batch], tf.string))["movie_ids"].numpy())
                           for i in range(0, len(users), batch)])


def evaluate(model_dir: str, scann_dir: Optional[str], train: tuple, eval_: tuple, movies: dict,
             ks: Tuple[int, ...] = KS) -> Dict[str, float]:
    """Metrics of one retrieval model (see the module docstring).

    Args:
      model_dir: exact (brute-force) retrieval SavedModel.
      scann_dir: ScaNN SavedModel of the same towers, or None.
      train, eval_: (user ids [n], movie ids [n]) of the splits.
      movies: {'ids': [I] catalogue movie ids, 'genres': [I, G] multi-hot}.
      ks: cut-offs (each at most the lists' length); beyond-accuracy metrics and the ScaNN check use the first.
    """
    index = {movie: i for i, movie in enumerate(movies["ids"])}
    users, relevant = relevance(eval_, index)
    top = top_lists(model_dir, users, index)
    ks = metrics.cut_offs(ks, top.shape[1])
    result = metrics.ranking_metrics(top, relevant, ks)
    popularity = np.bincount([index[m] for m in train[1] if m in index], minlength=len(index))
    result.update(metrics.beyond_accuracy(top, ks[0], popularity, len(set(train[0])), movies["genres"]))
    if scann_dir:
        approx = top_lists(scann_dir, users, index)
        result[f"scann_recall@{ks[0]}_vs_exact"] = metrics.recall_vs_exact(approx[:, :ks[0]], top[:, :ks[0]])
    return result


def bless(candidate: Dict[str, float], baseline: Optional[Dict[str, float]], recall_floor: float,
          max_regression: float) -> Tuple[bool, str]:
    """(blessed, why): recall@10 must reach the floor and not regress past the baseline's."""
    recall = candidate["recall@10"]
    if recall < recall_floor:
        return False, f"recall@10 {recall:.4f} is below the floor {recall_floor:.4f}"
    if baseline and recall < baseline["recall@10"] - max_regression:
        return False, (f"recall@10 {recall:.4f} regressed from the last blessed model's "
                       f"{baseline['recall@10']:.4f} (allowed: {max_regression:.4f})")
    return True, f"recall@10 {recall:.4f} clears the floor {recall_floor:.4f}" + (
        f" and the last blessed model's {baseline['recall@10']:.4f}" if baseline else "")


@tfx.dsl.components.component
def RetrievalEvaluator(
        model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model],
        scann_model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model],
        examples: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Examples],
        catalogue: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Examples],
        evaluation: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.ModelEvaluation],
        blessing: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.ModelBlessing],
        baseline_model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model] = None,
        baseline_blessing: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ModelBlessing] = None,
        recall_floor: tfx.dsl.components.Parameter[float] = 0.05,
        max_regression: tfx.dsl.components.Parameter[float] = 0.0) -> None:
    """Evaluates `model` (brute force) and `scann_model`; blesses per the module docstring."""
    if unchanged(model, baseline_model, baseline_blessing, evaluation, blessing, "RetrievalEvaluator"):
        return
    train, eval_ = read_pairs(examples.uri, "train"), read_pairs(examples.uri, "eval")
    movies = read_catalogue(catalogue.uri)
    model_dir, scann_dir = (os.path.join(m.uri, "Format-Serving") for m in (model, scann_model))
    result = evaluate(model_dir, scann_dir, train, eval_, movies)
    baseline = (evaluate(os.path.join(baseline_model.uri, "Format-Serving"), None, train, eval_, movies)
                if baseline_model else None)
    blessed, why = bless(result, baseline, recall_floor, max_regression)
    record(evaluation, {"model": result, "baseline": baseline}, result, blessing, model, blessed, why,
           "RetrievalEvaluator")


def unchanged(model, baseline_model, baseline_blessing, evaluation, blessing, component: str) -> bool:
    """True, with the last verdict's metrics recorded again and `model` NOT blessed (nothing new to
    push), when `model` is the last blessed model itself."""
    last = baseline_blessing.get_string_custom_property("evaluation") if baseline_blessing else ""
    if not last or baseline_model.uri != model.uri:
        return False
    report = json.loads(io_utils.read_string_file(os.path.join(last, "metrics.json")))
    blessing.set_int_custom_property("unchanged", 1)
    record(evaluation, report, {}, blessing, model, False, "unchanged: the last blessed model itself, pushed "
           "then; not pushed again", component)
    return True


def record(evaluation, report: dict, properties: Dict[str, float], blessing, model, blessed: bool, why: str,
           component: str) -> None:
    """Writes `report` and the verdict to `evaluation`/metrics.json, `properties` as its custom
    properties, and marks `blessing` for `model` as TFX's Evaluator does: the ML Metadata properties
    the Pusher and LatestBlessedModelStrategy read, and a BLESSED / NOT_BLESSED file holding `why`."""
    io_utils.write_string_file(os.path.join(evaluation.uri, "metrics.json"),
                               json.dumps({**report, "blessed": blessed, "why": why}, indent=1))
    for key, value in properties.items():  # ML Metadata's SQLite store refuses inf and NaN: those as text
        if math.isfinite(value):
            evaluation.set_float_custom_property(key, value)
        else:
            evaluation.set_string_custom_property(key, str(value))
    blessing.set_int_custom_property("blessed", int(blessed))
    blessing.set_int_custom_property("current_model_id", model.id)
    blessing.set_string_custom_property("current_model", model.uri)
    blessing.set_string_custom_property("why", why)
    blessing.set_string_custom_property("evaluation", evaluation.uri)
    io_utils.write_string_file(os.path.join(blessing.uri, "BLESSED" if blessed else "NOT_BLESSED"), why + "\n")
    print(f"{component}: {'blessed' if blessed else 'NOT blessed'}: {why}")
