"""RetrievalEvaluator: the evaluation protocol on a hand-checked model, and the blessing rule."""
import json
import os

import numpy as np
import pytest
from test_index_builder import MOVIES, SEEN, FakeTowers, catalogue
from tfx.types.standard_artifacts import Model, ModelBlessing, ModelEvaluation

from components import index_builder
from components.retrieval_evaluator import bless, evaluate, record, unchanged


def test_metrics_of_a_model_whose_lists_are_known(tmp_path):
    # u1 rated m1, m4 in train and gets [m2, m3]; u2 rated m2, m3 and gets m4 first.
    retrievers = index_builder.build_retrievers(FakeTowers(), catalogue(), seen=SEEN,
                                                n=2, scann={})
    for kind in ("scann", "bruteforce"):
        retrievers[kind].save(str(tmp_path / kind), scann=kind == "scann")
    train = (np.array([b"u1", b"u1", b"u2", b"u2"], object), np.array([b"m1", b"m4", b"m2", b"m3"], object))
    eval_ = (np.array([b"u1", b"u2"], object), np.array([b"m3", b"m4"], object))
    genres = np.zeros([len(MOVIES), 2])
    genres[:, 0] = 1.0  # every movie is in the same genre: lists have no diversity
    result = evaluate(str(tmp_path / "bruteforce"), str(tmp_path / "scann"), train, eval_,
                      {"ids": list(MOVIES), "genres": genres}, ks=(1, 2))
    # u1 finds m3 at rank 2, u2 finds m4 at rank 1.
    assert result["recall@1"] == 0.5 and result["recall@2"] == 1.0
    assert result["ndcg@2"] == pytest.approx((1 / np.log2(3) + 1) / 2)
    assert result["mrr"] == 0.75 and result["hit_rate@1"] == 0.5
    assert result["diversity@1"] == 0.0 and result["coverage@1"] == pytest.approx(2 / 20)
    assert result["scann_recall@1_vs_exact"] == 1.0


def test_blessing_needs_the_floor_and_no_regression():
    assert bless({"recall@10": 0.2}, None, 0.05, 0.0)[0]
    blessed, why = bless({"recall@10": 0.01}, None, 0.05, 0.0)
    assert not blessed and "below the floor 0.0500" in why
    blessed, why = bless({"recall@10": 0.18}, {"recall@10": 0.2}, 0.05, 0.01)
    assert not blessed and "regressed from the last blessed model's 0.2000" in why
    assert bless({"recall@10": 0.195}, {"recall@10": 0.2}, 0.05, 0.01)[0]


def test_the_last_blessed_model_itself_is_recorded_again_not_blessed(tmp_path):
    def artifact(kind, name):
        a = kind()
        a.uri = str(tmp_path / name)
        return a
    model, other = artifact(Model, "model"), artifact(Model, "other")
    last, last_blessing = artifact(ModelEvaluation, "last"), artifact(ModelBlessing, "last_blessing")
    record(last, {"model": {"recall@10": 0.2}}, {}, last_blessing, model, True, "clears the floor", "E")
    evaluation, blessing = artifact(ModelEvaluation, "evaluation"), artifact(ModelBlessing, "blessing")
    assert not unchanged(other, model, last_blessing, evaluation, blessing, "E")  # a new model: measured
    assert not unchanged(model, None, None, evaluation, blessing, "E")  # no baseline yet
    assert unchanged(model, model, last_blessing, evaluation, blessing, "E")
    report = json.load(open(os.path.join(evaluation.uri, "metrics.json")))
    assert report["model"] == {"recall@10": 0.2} and not report["blessed"] and "unchanged" in report["why"]
    assert blessing.get_int_custom_property("blessed") == 0 and blessing.get_int_custom_property("unchanged") == 1
    assert os.path.exists(os.path.join(blessing.uri, "NOT_BLESSED"))  # the Pushers push nothing
