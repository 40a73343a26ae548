"""The whole system on small synthetic data: TFX pipeline -> server subprocess -> gRPC client."""
import contextlib
import glob
import json
import os
import subprocess
import sys

import pytest
from test_lineage_report import check_lineage, check_report

from benchmarks import synthetic
from benchmarks.scale import stages
from components.examples import read_pairs
from pipeline import configs, local_runner
from serving.client import RecommenderClient
from serving.config import write_config
from serving.server import running_server

K = 10
CACHED_WHEN_UNCHANGED = ("ImportSchemaGen", "MovieCatalogueGen", "MovieLensExampleGen", "StatisticsGen",
                         "ExampleValidator", "DataGate", "Transform", "RetrievalTrainer", "IndexBuilder",
                         "RankingTrainer")


@pytest.mark.slow
def test_pipeline_serves_recommendations_over_grpc(tmp_path, monkeypatch):
    # On 120 synthetic movies after 2 epochs the re-ranker need not beat retrieval; the gate that
    # refuses it then is tested by test_two_stage_evaluator.py and test_ranking_gate.py.
    monkeypatch.setattr(configs, "RANKING_MIN_NDCG_GAIN", -1.0)
    data_dir = synthetic.write(str(tmp_path / "data"), users=60, movies=120, ratings=3000, seed=3)
    serving_dir = local_runner.run(str(data_dir), str(tmp_path / "out"), epochs=2)
    for model in ("retrieval", "retrieval_bruteforce", "ranking"):
        assert glob.glob(os.path.join(serving_dir, model, "*", "saved_model.pb")), model
    check_lineage(str(tmp_path / "out"), str(data_dir), epochs=2)
    check_report(str(tmp_path / "out"))

    root = tmp_path / "out" / "pipeline"
    users, movies = read_pairs(glob.glob(str(root / "MovieLensExampleGen" / "examples" / "*"))[0], "train")
    user = users[0]
    rated = {m.decode() for u, m in zip(users, movies, strict=True) if u == user}
    catalogue = {line.split("|")[0] for line in open(data_dir / "u.item", encoding="latin-1")}
    evaluation = json.load(open(glob.glob(str(root / "RetrievalEvaluator" / "evaluation" / "*" / "metrics.json"))[0]))
    assert evaluation["blessed"] and evaluation["model"]["recall@10"] >= 0.05, evaluation["why"]

    config = write_config(str(tmp_path / "models.config"),
                          {name: os.path.join(serving_dir, name) for name in ("retrieval", "ranking")})
    with running_server(config) as target, contextlib.closing(RecommenderClient(target, timeout=10)) as client:
        client.wait_until_ready(timeout=180)
        items = client.recommend(user.decode(), k=K)
        cli = subprocess.run([sys.executable, "-m", "serving.client", "--user", user.decode(), "-k", "3",
                              "--json", "--server", target], capture_output=True, text=True, timeout=120, check=True)

    ids = [item["movie_id"] for item in items]
    scores = [item["score"] for item in items]
    assert len(ids) == K == len(set(ids))
    assert set(ids) <= catalogue
    assert not set(ids) & rated, "movies the user rated in training must be excluded"
    assert scores == sorted(scores, reverse=True)  # the client orders by the ranking model's score
    assert all(isinstance(item["rating"], float) and item["source"] == "ranking" for item in items)
    two_stage = json.load(open(glob.glob(str(root / "RankingEvaluator" / "evaluation" / "*" / "metrics.json"))[0]))
    assert set(two_stage) >= {"ranking", "retrieval", "blessed", "why"}
    assert [item["rank"] for item in items] == list(range(1, K + 1))
    assert all(item["title"].startswith("Synthetic Film") for item in items)
    answer = json.loads(cli.stdout)
    assert answer["user_id"] == user.decode()
    assert [r["movie_id"] for r in answer["recommendations"]] == ids[:3]

    # Unchanged, a re-run reuses the outputs of every component up to the Trainers and IndexBuilder from
    # ML Metadata; the evaluators run again (their baseline, the last blessed model, is new), find the models
    # are that baseline and push nothing again.
    metadata = str(tmp_path / "out" / "metadata.db")
    versions = {model: sorted(os.listdir(os.path.join(serving_dir, model))) for model in ("retrieval", "ranking")}
    local_runner.run(str(data_dir), str(tmp_path / "out"), epochs=2)
    second = {name: cached for name, _, _, cached in stages(metadata)}
    assert sorted(name for name, cached in second.items() if cached) == sorted(CACHED_WHEN_UNCHANGED), second
    assert {model: sorted(os.listdir(os.path.join(serving_dir, model))) for model in versions} == versions
    # --no-cache runs a component again though nothing changed.
    local_runner.run(str(data_dir), str(tmp_path / "out"), until="MovieCatalogueGen", cache=False)
    assert {name: cached for name, _, _, cached in stages(metadata)}["MovieCatalogueGen"] is False

    # A broken retrieval model (it never learns) is evaluated against the blessed one and not pushed;
    # nor is the ranking model trained with it (its features read those towers). The data stages,
    # unchanged, come from the cache.
    pushed = sorted(os.listdir(os.path.join(serving_dir, "retrieval")))
    ranking = sorted(os.listdir(os.path.join(serving_dir, "ranking")))
    local_runner.run(str(data_dir), str(tmp_path / "out"), epochs=1, retrieval_config={"learning_rate": 0.0})
    third = {name: cached for name, _, _, cached in stages(metadata)}
    assert third["MovieLensExampleGen"] and third["Transform"] and not third["RetrievalTrainer"], third
    assert sorted(os.listdir(os.path.join(serving_dir, "retrieval"))) == pushed
    paths = glob.glob(str(root / "RetrievalEvaluator" / "evaluation" / "*" / "metrics.json"))
    verdicts = [json.load(open(path)) for path in paths]
    assert sorted(v["blessed"] for v in verdicts) == [False, False, True]  # this, the unchanged one, the first run
    assert sum("unchanged" in v["why"] for v in verdicts) == 1
    assert any("regressed from the last blessed model's" in v["why"] for v in verdicts)
    assert sorted(os.listdir(os.path.join(serving_dir, "ranking"))) == ranking
