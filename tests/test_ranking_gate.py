"""The ranking model's gate: a broken model is evaluated by TFMA, not blessed, and not pushed.

Runs create_pipeline() up to RankingPusher (a partial run: the data stages, both Trainers,
IndexBuilder, the baseline resolver, RatingEvaluator (TFMA), RankingEvaluator (the two-stage
order), RankingPusher) on tiny synthetic data.
"""
import glob
import json
import os

import pytest

from benchmarks import synthetic


@pytest.mark.slow
def test_a_diverged_ranking_model_is_not_blessed_or_pushed(tmp_path):
    import tensorflow_model_analysis as tfma
    from tfx import v1 as tfx
    from tfx.orchestration import pipeline as tfx_pipeline

    from pipeline.pipeline import create_pipeline

    data_dir = synthetic.write(str(tmp_path / "data"), users=30, movies=40, ratings=600, seed=1)
    serving_dir = tmp_path / "serving"
    pipeline = create_pipeline("gate", str(tmp_path / "root"), str(data_dir), str(serving_dir),
                               metadata_path=str(tmp_path / "metadata.db"),
                               ranking_config={"learning_rate": 100.0, "epochs": 1})  # diverges
    tfx.orchestration.LocalDagRunner().run(pipeline, run_options=tfx_pipeline.RunOptions(to_nodes=["RankingPusher"]))

    evaluations = glob.glob(str(tmp_path / "root" / "RatingEvaluator" / "evaluation" / "*"))
    assert len(evaluations) == 1
    result = tfma.load_validation_result(evaluations[0])
    assert not result.validation_ok
    failed = {f.metric_key.name for m in result.metric_validations_per_slice for f in m.failures}
    assert failed == {"root_mean_squared_error"}
    assert glob.glob(str(tmp_path / "root" / "RatingEvaluator" / "blessing" / "*" / "NOT_BLESSED"))
    verdict = json.load(open(glob.glob(str(tmp_path / "root" / "RankingEvaluator" / "evaluation" / "*"
                                                 / "metrics.json"))[0]))
    assert not verdict["blessed"] and "ratings NOT blessed" in verdict["why"]
    assert glob.glob(str(tmp_path / "root" / "RankingEvaluator" / "blessing" / "*" / "NOT_BLESSED"))
    assert not os.path.exists(serving_dir / "ranking") or not os.listdir(serving_dir / "ranking")
