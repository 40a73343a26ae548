"""The Kubeflow V2 pipeline JSON, compiled offline, and the pipeline image's Dockerfile."""
import json
import os
import subprocess
import sys

from pipeline.kubeflow_runner import compile_pipeline

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EDGES = {  # task -> the tasks it waits for
    "MovieLensExampleGen": set(),
    "MovieCatalogueGen": set(),
    "StatisticsGen": {"MovieLensExampleGen"},
    "ImportSchemaGen": set(),
    "ExampleValidator": {"StatisticsGen", "ImportSchemaGen"},
    "DataGate": {"StatisticsGen", "ImportSchemaGen", "ExampleValidator"},
    "Transform": {"MovieLensExampleGen", "ImportSchemaGen", "DataGate"},
    "RetrievalTrainer": {"Transform", "ImportSchemaGen"},
    "RankingTrainer": {"Transform", "ImportSchemaGen", "RetrievalTrainer"},
    "IndexBuilder": {"RetrievalTrainer", "MovieLensExampleGen", "MovieCatalogueGen"},
    "LatestBlessedRetrieval-model-resolver": set(),
    "LatestBlessedRetrieval-model-blessing-resolver": set(),
    "RetrievalEvaluator": {"IndexBuilder", "MovieLensExampleGen", "MovieCatalogueGen",
                           "LatestBlessedRetrieval-model-resolver"},
    "RetrievalPusher": {"IndexBuilder", "RetrievalEvaluator"},
    "BruteForcePusher": {"IndexBuilder", "RetrievalEvaluator"},
    "LatestBlessedRanking-model-resolver": set(),
    "LatestBlessedRanking-model-blessing-resolver": set(),
    "RankingEvaluator": {"RankingTrainer", "IndexBuilder", "MovieLensExampleGen", "MovieCatalogueGen",
                         "LatestBlessedRanking-model-resolver", "RetrievalEvaluator"},
    "RankingPusher": {"RankingTrainer", "RankingEvaluator"},
}


def test_compiles_every_component_with_its_edges_image_and_arguments(tmp_path):
    path = compile_pipeline("gcr.io/p/recsys:1", "gs://b/root", "gs://b/ml-100k", "gs://b/serving",
                            str(tmp_path / "pipeline.json"), ["--runner=DataflowRunner", "--project=p"])
    spec = json.load(open(path))["pipelineSpec"]
    tasks = spec["root"]["dag"]["tasks"]
    assert {name: set(task.get("dependentTasks", [])) for name, task in tasks.items()} == EDGES
    for evaluator, resolver in (("RetrievalEvaluator", "LatestBlessedRetrieval"), ("RankingEvaluator",
                                                                                 "LatestBlessedRanking")):
        blessing = tasks[evaluator]["inputs"]["artifacts"]["baseline_blessing"]["taskOutputArtifact"]
        assert blessing["producerTask"] == f"{resolver}-model-blessing-resolver", evaluator
    executors = spec["deploymentSpec"]["executors"]
    assert {e["container"]["image"] for e in executors.values() if "resolver" not in e} == {"gcr.io/p/recsys:1"}
    for beam_component in ("MovieLensExampleGen", "StatisticsGen", "Transform"):
        args = executors[f"{beam_component}_executor"]["container"]["args"]
        assert "--runner=DataflowRunner" in args and "--project=p" in args, beam_component
    params = tasks["MovieLensExampleGen"]["inputs"]["parameters"]
    assert params["input_base"]["runtimeValue"]["constantValue"]["stringValue"] == "gs://b/ml-100k"
    assert params["split"]["runtimeValue"]["constantValue"]["stringValue"] == "random"
    catalogue = tasks["MovieCatalogueGen"]["inputs"]["parameters"]
    assert catalogue["input_base"]["runtimeValue"]["constantValue"]["stringValue"] == "gs://b/ml-100k"
    assert "/pipeline/pipeline/schema.pbtxt" in json.dumps(tasks["ImportSchemaGen"])  # inside the image
    pushed = json.dumps(tasks["RankingPusher"])
    assert "gs://b/serving/ranking" in pushed


def test_dockerfile_passes_hadolint():
    hadolint = os.path.join(os.path.dirname(sys.executable), "hadolint")
    result = subprocess.run([hadolint, os.path.join(ROOT, "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
