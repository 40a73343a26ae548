"""Offline checks of the real-TF-Serving deployment files in serving/deploy/ (no Docker
engine or cluster here): yamllint, Kubernetes schema validation, and the compose file's
and configs' consistency with what the pipeline pushes."""
import os
import subprocess
import sys

import yaml
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEPLOY = os.path.join(ROOT, "serving", "deploy")
K8S = sorted(os.path.join(DEPLOY, "k8s", f) for f in os.listdir(os.path.join(DEPLOY, "k8s")))
BIN = os.path.dirname(sys.executable)
IMAGE = "tensorflow/serving:2.16.1"
STOCK_MODELS = {"ranking": "/models/ranking", "retrieval_bruteforce": "/models/retrieval_bruteforce"}


def parse_config(text: str) -> dict:
    config = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    return {m.name: m.base_path for m in config.model_config_list.config}


def documents(path: str) -> list:
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def test_yaml_passes_yamllint():
    result = subprocess.run([os.path.join(BIN, "yamllint"), "--strict", "-c", os.path.join(DEPLOY, ".yamllint"),
                             DEPLOY], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_kubernetes_manifests_validate_against_the_schema():
    result = subprocess.run([os.path.join(BIN, "kubernetes-validate"), "--kubernetes-version", "1.30.0",
                             "--strict", *K8S], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    kinds = {d["kind"] for path in K8S for d in documents(path)}
    assert kinds == {"ConfigMap", "Deployment", "PersistentVolumeClaim", "Service"}


def test_tf_serving_configs_serve_the_stock_models_at_absolute_paths():
    with open(os.path.join(DEPLOY, "models.config")) as f:
        assert parse_config(f.read()) == STOCK_MODELS
    (configmap,) = documents(os.path.join(DEPLOY, "k8s", "configmap.yaml"))
    assert parse_config(configmap["data"]["models.config"]) == STOCK_MODELS


def test_deployment_runs_tf_serving_with_probes_and_resources():
    (deployment,) = documents(os.path.join(DEPLOY, "k8s", "deployment.yaml"))
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == IMAGE
    assert container["readinessProbe"]["httpGet"]["path"] == "/v1/models/ranking"
    assert {"cpu", "memory"} <= set(container["resources"]["requests"]) & set(container["resources"]["limits"])
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert "--model_config_file=/config/models.config" in container["args"] and mounts["config"] == "/config"
    (service,) = documents(os.path.join(DEPLOY, "k8s", "service.yaml"))
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert {p["port"] for p in service["spec"]["ports"]} == {8500, 8501}


def test_compose_file_mounts_the_config_and_the_pushed_models():
    (compose,) = documents(os.path.join(DEPLOY, "docker-compose.yml"))
    service = compose["services"]["tf-serving"]
    assert service["image"] == IMAGE
    volumes = dict(v.rsplit(":", 1)[0].split(":") for v in service["volumes"])
    assert volumes == {"../../outputs/serving": "/models", "./models.config": "/config/models.config"}
    assert "--model_config_file=/config/models.config" in service["command"]
    assert all(port.startswith("127.0.0.1:") for port in service["ports"])  # loopback only
