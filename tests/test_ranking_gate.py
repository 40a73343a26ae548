"""The ranking model's gate: a broken model is evaluated by TFMA, not blessed, and not pushed.

Runs the part of create_pipeline() that RankingPusher depends on (ExampleGen .. Transform,
RankingTrainer, the baseline resolver, RankingEvaluator) on tiny synthetic data.
"""
import glob
import os

import pytest

from pipeline import configs, synthetic


def upstream(component) -> list:
    """The component and every component it depends on, transitively."""
    found, todo = {}, [component]
    while todo:
        node = todo.pop()
        if node.id not in found:
            found[node.id] = node
            todo.extend(node.upstream_nodes)
    return list(found.values())


@pytest.mark.slow
def test_a_diverged_ranking_model_is_not_blessed_or_pushed(tmp_path):
    import tensorflow_model_analysis as tfma
    from tfx import v1 as tfx

    from pipeline.pipeline import create_pipeline

    data_dir = synthetic.write(str(tmp_path / "data"), users=30, movies=40, ratings=600, seed=1)
    serving_dir = tmp_path / "serving"
    full = create_pipeline("gate", str(tmp_path / "root"), str(data_dir), str(serving_dir),
                           metadata_path=str(tmp_path / "metadata.db"),
                           ranking_config={"learning_rate": 100.0, "epochs": 1})  # diverges
    pusher = next(c for c in full.components if c.id == "RankingPusher")
    tfx.orchestration.LocalDagRunner().run(tfx.dsl.Pipeline(
        pipeline_name="gate", pipeline_root=str(tmp_path / "root"), components=upstream(pusher),
        metadata_connection_config=full.metadata_connection_config,
        beam_pipeline_args=configs.BEAM_PIPELINE_ARGS))

    evaluations = glob.glob(str(tmp_path / "root" / "RankingEvaluator" / "evaluation" / "*"))
    assert len(evaluations) == 1
    result = tfma.load_validation_result(evaluations[0])
    assert not result.validation_ok
    failed = {f.metric_key.name for m in result.metric_validations_per_slice for f in m.failures}
    assert failed == {"root_mean_squared_error"}
    assert glob.glob(str(tmp_path / "root" / "RankingEvaluator" / "blessing" / "*" / "NOT_BLESSED"))
    assert not os.path.exists(serving_dir / "ranking") or not os.listdir(serving_dir / "ranking")
