"""DataGate: the curated schema and drift checks stop anomalous data, naming feature and reason."""
import shutil

import pandas as pd
import pytest
import tensorflow_data_validation as tfdv
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2

from components.data_gate import ANOMALIES_FILE, STATISTICS_FILE, DataAnomalyError, check, gate
from pipeline import configs


def schema():
    return text_format.Parse(open(configs.SCHEMA_FILE).read(), schema_pb2.Schema())


def frame(ratings, gender="M"):
    n = len(ratings)
    return pd.DataFrame({"user_id": ["1"] * n, "movie_id": ["2"] * n, "rating": ratings,
                         "timestamp": [881250949] * n, "user_age": [30] * n, "user_gender": [gender] * n,
                         "user_occupation": ["writer"] * n, "user_zip": ["94110"] * n,
                         "movie_title": ["Heat (1995)"] * n, "movie_year": [1995] * n,
                         "movie_genres": [["Action", "Crime"]] * n, "movie_tags": [[]] * n})


def stats(df):
    return tfdv.generate_statistics_from_dataframe(df)


def test_check_names_split_feature_and_reason():
    anomalies = anomalies_pb2.Anomalies()
    anomalies.anomaly_info["rating"].description = "Unexpectedly large value: 7."
    with pytest.raises(DataAnomalyError, match=r"split 'eval': rating: Unexpectedly large value: 7\."):
        check({"split 'train'": anomalies_pb2.Anomalies(), "split 'eval'": anomalies})
    check({"split 'train'": anomalies_pb2.Anomalies()})  # nothing to report: returns


def test_curated_schema_accepts_good_rows_and_rejects_bad_ones():
    assert not tfdv.validate_statistics(stats(frame([1.0, 3.0, 4.5, 5.0])), schema()).anomaly_info
    bad = tfdv.validate_statistics(stats(frame([1.0, 7.0], gender="X")), schema())
    assert set(bad.anomaly_info) == {"rating", "user_gender"}


def test_drift_between_train_and_eval_is_an_anomaly():
    train = stats(frame([1.0, 2.0, 3.0, 4.0, 5.0] * 20))
    same = tfdv.validate_statistics(stats(frame([1.0, 2.0, 3.0, 4.0, 5.0] * 5)), schema(), previous_statistics=train)
    assert not same.anomaly_info
    drifted = tfdv.validate_statistics(stats(frame([5.0] * 25)), schema(), previous_statistics=train)
    with pytest.raises(DataAnomalyError, match="eval drifted from train: rating"):
        check({"eval drifted from train": drifted})


def write_artifacts(root, train, eval_):
    """The files StatisticsGen, the schema importer and ExampleValidator leave for DataGate,
    from two frames: FeatureStats.pb and SchemaDiff.pb per split, and schema.pbtxt."""
    (root / "schema").mkdir(parents=True)
    shutil.copy(configs.SCHEMA_FILE, root / "schema" / "schema.pbtxt")
    for split, df in (("train", train), ("eval", eval_)):
        for kind in ("statistics", "anomalies"):
            (root / kind / f"Split-{split}").mkdir(parents=True)
        statistics = stats(df)
        (root / "statistics" / f"Split-{split}" / STATISTICS_FILE).write_bytes(statistics.SerializeToString())
        anomalies = tfdv.validate_statistics(statistics, schema())  # what ExampleValidator computes
        (root / "anomalies" / f"Split-{split}" / ANOMALIES_FILE).write_bytes(anomalies.SerializeToString())
    return [str(root / kind) for kind in ("statistics", "schema", "anomalies")]


def test_gate_passes_good_data_and_fails_on_an_anomalous_split(tmp_path):
    good = frame([1.0, 2.0, 3.0, 4.0, 5.0] * 4)
    gate(*write_artifacts(tmp_path / "good", good, good), ["train", "eval"])  # returns
    bad = frame([1.0, 2.0, 3.0, 4.0, 7.0] * 4)  # a rating off the 0.5..5 scale
    with pytest.raises(DataAnomalyError, match=r"split 'eval': rating: .*\n.*update pipeline/schema\.pbtxt"):
        gate(*write_artifacts(tmp_path / "bad", good, bad), ["train", "eval"])
