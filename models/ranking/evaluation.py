"""The ranking model's TFMA EvalConfig: what the Evaluator computes, and when it blesses.

Over the `evaluate` and `transformed_labels` signatures: RMSE, MAE and calibration of the
rating, AUC and calibration of the like probability, overall and by user gender. Blessed only
when RMSE is under `rmse_ceiling` and at most `max_rmse_increase` above the last blessed model's.
"""
import tensorflow_model_analysis as tfma

from models import features as F

RATING, LIKE = "rating", "like_probability"  # the signature's outputs
SLICE_FEATURES = (F.USER_GENDER,)


def eval_config(rmse_ceiling: float, max_rmse_increase: float) -> tfma.EvalConfig:
    """TFMA config gating on the eval RMSE (absolute ceiling and change against the baseline)."""
    rmse = tfma.MetricConfig(class_name="RootMeanSquaredError", threshold=tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(upper_bound={"value": rmse_ceiling}),
        change_threshold=tfma.GenericChangeThreshold(direction=tfma.MetricDirection.LOWER_IS_BETTER,
                                                     absolute={"value": max_rmse_increase})))
    return tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(signature_name="evaluate", preprocessing_function_names=["transformed_labels"],
                                    label_keys={RATING: F.RATING, LIKE: F.LIKED})],
        slicing_specs=[tfma.SlicingSpec()] + [tfma.SlicingSpec(feature_keys=[key]) for key in SLICE_FEATURES],
        metrics_specs=[
            tfma.MetricsSpec(output_names=[RATING], metrics=[
                rmse, tfma.MetricConfig(class_name="MeanAbsoluteError"), tfma.MetricConfig(class_name="Calibration"),
                tfma.MetricConfig(class_name="ExampleCount")]),
            tfma.MetricsSpec(output_names=[LIKE], metrics=[
                tfma.MetricConfig(class_name="AUC"), tfma.MetricConfig(class_name="Calibration")])])
