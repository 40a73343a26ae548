"""The ranking model's gate: a diverged model is evaluated, not blessed, and not pushed.

Runs create_pipeline() up to RankingPusher (a partial run: the data stages, both Trainers,
IndexBuilder, the baseline resolver, RankingEvaluator (the two-stage order and the rating
RMSE), RankingPusher) on tiny synthetic data.
"""
import glob
import json
import os

import pytest

from benchmarks import synthetic
from pipeline import configs


@pytest.mark.slow
def test_a_diverged_ranking_model_is_not_blessed_or_pushed(tmp_path, monkeypatch):
    from tfx import v1 as tfx
    from tfx.orchestration import pipeline as tfx_pipeline

    from pipeline.pipeline import create_pipeline

    monkeypatch.setattr(configs, "RANKING_MIN_NDCG_GAIN", -1.0)  # any order passes: only the RMSE can refuse
    data_dir = synthetic.write(str(tmp_path / "data"), users=30, movies=40, ratings=600, seed=1)
    serving_dir = tmp_path / "serving"
    pipeline = create_pipeline("gate", str(tmp_path / "root"), str(data_dir), str(serving_dir),
                               metadata_path=str(tmp_path / "metadata.db"),
                               ranking_config={"learning_rate": 100.0, "epochs": 1})  # diverges
    tfx.orchestration.LocalDagRunner().run(pipeline, run_options=tfx_pipeline.RunOptions(to_nodes=["RankingPusher"]))

    verdict = json.load(open(glob.glob(str(tmp_path / "root" / "RankingEvaluator" / "evaluation" / "*"
                                                 / "metrics.json"))[0]))
    assert not verdict["ranking"]["rmse"] <= configs.RANKING_RMSE_CEILING  # above it, or NaN
    assert not verdict["blessed"] and "against at most 1.1000 (ceiling 1.1000)" in verdict["why"]
    assert glob.glob(str(tmp_path / "root" / "RankingEvaluator" / "blessing" / "*" / "NOT_BLESSED"))
    assert not os.path.exists(serving_dir / "ranking") or not os.listdir(serving_dir / "ranking")
