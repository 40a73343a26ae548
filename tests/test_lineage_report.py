"""pipeline.lineage and pipeline.report: unit checks here; check_lineage and check_report run
on the end-to-end test's pipeline (tests/test_end_to_end.py), which calls them."""
import glob
import hashlib
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from pipeline import code_version, configs, report
from pipeline.lineage import describe, lineage


def test_lineage_says_how_to_fix_a_path_that_is_not_a_pushed_model(tmp_path):
    cli = subprocess.run([sys.executable, "-m", "pipeline.lineage", str(tmp_path / "serving" / "ranking" / "1")],
                         capture_output=True, text=True, timeout=60)
    assert cli.returncode == 2 and "No ML Metadata at" in cli.stderr and "<output-dir>/serving/" in cli.stderr


def test_popularity_and_ease_by_hand():
    # u1 rated m0, m1 and u2 m0, m2 in train; u3 m0 and m1. Eval: u1 m2, u2 m1, u3 m3.
    train = (np.array([b"u1", b"u1", b"u2", b"u2", b"u3", b"u3"], object),
             np.array([b"m0", b"m1", b"m0", b"m2", b"m0", b"m1"], object))
    eval_ = (np.array([b"u1", b"u2", b"u3"], object), np.array([b"m2", b"m1", b"m3"], object))
    result = report.baselines(train, eval_, [b"m0", b"m1", b"m2", b"m3"], lam=1.0)
    # Popularity (m0 3, m1 2, m2 1, m3 0) less each user's movies: u1 [m2, m3], u2 [m1, m3], u3 [m2, m3]:
    # u1 and u2 find theirs first, u3 second.
    assert result["popularity"]["recall@4"] == 1.0
    assert result["popularity"]["ndcg@4"] == pytest.approx((1 + 1 + 1 / np.log2(3)) / 3)
    # EASE: m1 and m2 both follow m0, so u1 gets m2 and u2 gets m1 first; m3 (nobody's) is u3's last.
    assert result["EASE"]["mrr"] == pytest.approx((1 + 1 + 1 / 2) / 3)


def test_table_escapes_and_rounds():
    assert report.table(["a<b"], [[0.123456], ["<x>"]]) == (
        "<table><tr><th>a&lt;b</th></tr><tr><td>0.1235</td></tr><tr><td>&lt;x&gt;</td></tr></table>")


def check_lineage(out_dir: str, data_dir: str, epochs: int) -> None:
    """Each link of the lineage of the pushed retrieval and ranking models of the run in `out_dir`."""
    root = os.path.join(out_dir, "pipeline")
    for model, config in (("retrieval", {"epochs": epochs}),
                          ("ranking", {"num_candidates": configs.NUM_CANDIDATES, "retrieval": {"epochs": epochs},
                                       "epochs": epochs})):
        trainer, evaluator = f"{model.capitalize()}Trainer", f"{model.capitalize()}Evaluator"
        (pushed,) = glob.glob(os.path.join(out_dir, "serving", model, "*"))
        info = lineage(pushed)
        assert (info["model"], info["version"], info["pushed_by"]) == (pushed, os.path.basename(pushed),
                                                                        f"{model.capitalize()}Pusher")
        assert info["data"] == data_dir and info["release"] == "ml-100k"
        assert info["sha256"] == {name: hashlib.sha256(open(os.path.join(data_dir, name), "rb").read()).hexdigest()
                                  for name in ("u.data", "u.item", "u.user")}
        assert info["split"] == {"split": "random", "eval_fraction": 0.2, "split_seed": 42, "leave_last_n": 1}
        assert [info["examples"]] == glob.glob(f"{root}/MovieLensExampleGen/examples/*")
        assert info["schema_file"] == configs.SCHEMA_FILE and [info["schema"]] == glob.glob(
            f"{root}/ImportSchemaGen/schema/*")
        assert [info["transform_graph"]] == glob.glob(f"{root}/Transform/transform_graph/*")
        assert info["trainer"] == trainer and [info["trainer_model"]] == glob.glob(f"{root}/{trainer}/model/*")
        assert json.loads(info["trainer_properties"]["custom_config"]) == config
        (evaluation,) = glob.glob(f"{root}/{evaluator}/evaluation/*")
        assert (info["evaluator"], info["evaluation"]) == (evaluator, evaluation)
        recorded = json.load(open(f"{evaluation}/metrics.json"))
        expected = recorded["model"] if model == "retrieval" else {
            f"{order}_{k}": v for order in ("ranking", "retrieval") for k, v in recorded[order].items()}
        assert info["metrics"] == pytest.approx(expected, abs=1e-6)  # ML Metadata holds them to 6 decimals
        assert info["blessing"]["blessed"] == 1 and info["blessing"]["why"] == recorded["why"]
        run_fn = configs.RETRIEVAL_RUN_FN if model == "retrieval" else configs.RANKING_RUN_FN
        assert info["code_version"] == code_version.source_hash(["tfx.components.trainer.executor",
                                                                 run_fn.rsplit(".", 1)[0]])
        assert describe(info).endswith(f"code version: {info['code_version']}")
        cli = subprocess.run([sys.executable, "-m", "pipeline.lineage", pushed, "--json"], capture_output=True,
                             text=True, timeout=120, check=True)
        assert json.loads(cli.stdout) == json.loads(json.dumps(info))


def check_report(out_dir: str) -> None:
    """report.html of the run in `out_dir`: written, self-contained, every section there."""
    text = open(os.path.join(out_dir, "report.html")).read()
    assert not re.search(r"https?://", text), "the report must not fetch anything"
    assert not re.search(r"""(src|href)=(?!["']?data:)""", text), "only inline images, no links to files"
    for section in ("Data statistics", "Anomalies in train", "Anomalies in eval", "Retrieval metrics",
                    "Ranking metrics", "Quality on the eval split", "Training curves", "Recommendations"):
        assert f">{section}" in text, section
    assert text.count('src="data:image/png;base64,') == 3  # retrieval; ranking's listwise and rating histories
    served = json.load(open(glob.glob(f"{out_dir}/pipeline/RankingEvaluator/evaluation/*/metrics.json")[0]))
    for row in ("popularity", "EASE", "retrieval alone", "served (retrieval, then ranking)"):
        assert f"<td>{row}</td>" in text
    assert f"<td>{served['ranking']['ndcg@10']:.4f}</td>" in text
    assert text.count("<h3>User ") == 3 and text.count("Synthetic Film") >= 30  # 3 users x 10 titles
