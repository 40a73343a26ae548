"""DataGate: stops the pipeline before any Trainer (it runs upstream of Transform) when
ExampleValidator found anomalies in any split or the eval split drifted from train beyond the
schema's drift_comparator thresholds. The error names each feature and the reason.
"""
import os
from typing import Dict, List

import tensorflow_data_validation as tfdv
from tensorflow_data_validation.utils import anomalies_util
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2
from tfx import v1 as tfx
from tfx.types import artifact_utils
from tfx.utils import io_utils

ANOMALIES_FILE = "SchemaDiff.pb"  # ExampleValidator's output, per split
STATISTICS_FILE = "FeatureStats.pb"  # StatisticsGen's output, per split


class DataAnomalyError(RuntimeError):
    """The data broke the curated schema (pipeline/schema.pbtxt) or drifted."""


def check(labelled: Dict[str, anomalies_pb2.Anomalies]) -> None:
    """Raises DataAnomalyError listing every anomaly of {label: Anomalies}, a line per feature."""
    problems = []
    for label, anomalies in labelled.items():
        problems += [f"  {label}: {feature}: {info.description or info.short_description}"
                     for feature, info in sorted(anomalies.anomaly_info.items())]
        if anomalies.HasField("dataset_anomaly_info"):
            problems.append(f"  {label}: (dataset): {anomalies.dataset_anomaly_info.description}")
    if problems:
        raise DataAnomalyError(
            "The data has anomalies, so nothing is trained or pushed:\n" + "\n".join(problems) +
            "\nFix the input files, or if the change is intended, update pipeline/schema.pbtxt.")


def gate(statistics_uri: str, schema_uri: str, anomalies_uri: str, splits: List[str]) -> None:
    """Raises DataAnomalyError on ExampleValidator's anomalies in any of `splits` or on the
    eval split's drift from train (artifact directories as the components write them)."""
    check({f"split '{split}'": anomalies_util.load_anomalies_binary(
        os.path.join(anomalies_uri, f"Split-{split}", ANOMALIES_FILE)) for split in splits})
    curated = io_utils.parse_pbtxt_file(os.path.join(schema_uri, "schema.pbtxt"), schema_pb2.Schema())
    train, eval_ = (tfdv.load_stats_binary(os.path.join(statistics_uri, f"Split-{split}", STATISTICS_FILE))
                    for split in ("train", "eval"))
    check({"eval drifted from train": tfdv.validate_statistics(eval_, curated, previous_statistics=train)})


@tfx.dsl.components.component
def DataGate(statistics: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleStatistics],
             schema: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Schema],
             anomalies: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleAnomalies],
             ) -> None:
    """Fails on ExampleValidator's anomalies or train/eval drift (see the module docstring)."""
    gate(statistics.uri, schema.uri, anomalies.uri, artifact_utils.decode_split_names(anomalies.split_names))
