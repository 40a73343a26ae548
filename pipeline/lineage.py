"""Where a pushed model came from, read from the run's ML Metadata.

    python -m pipeline.lineage outputs/serving/ranking/<version>          # a few lines
    python -m pipeline.lineage outputs/serving/retrieval/<version> --json

PushedModel -> Pusher -> its Model and ModelBlessing -> the evaluator (metrics, verdict) and
the Trainer (config) -> Transform graph, Examples, Schema -> ExampleGen (data directory,
release, files' sha256 recorded at ingestion, split).
"""
import argparse
import json
import os
from typing import Dict

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2 as pb

CODE_VERSION_KEYS = ("code_version", "git_commit")  # Trainer exec properties that name the code


def _props(message) -> dict:
    return {key: getattr(value, value.WhichOneof("value")) for key, value in message.custom_properties.items()
            if key != "is_external"}


def _artifacts(store, execution_id: int, kind: int) -> Dict[str, pb.Artifact]:
    events = [e for e in store.get_events_by_execution_ids([execution_id]) if e.type == kind]
    by_id = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in events])}
    return {e.path.steps[0].key: by_id[e.artifact_id] for e in events}


def _producer(store, artifact: pb.Artifact) -> pb.Execution:
    event = next(e for e in store.get_events_by_artifact_ids([artifact.id]) if e.type == pb.Event.OUTPUT)
    return store.get_executions_by_id([event.execution_id])[0]


def _node(artifact: pb.Artifact) -> str:
    return artifact.uri.rstrip("/").split("/")[-3]  # <pipeline root>/<node id>/<output key>/<execution id>


def lineage(pushed_dir: str, metadata_path: str = "") -> dict:
    """The lineage of the model pushed to `pushed_dir` (<output>/serving/<model>/<version>);
    ML Metadata from `metadata_path`, by default <output>/metadata.db."""
    path = os.path.abspath(pushed_dir).rstrip("/")
    metadata_path = metadata_path or os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(path))),
                                                  "metadata.db")
    if not os.path.isfile(metadata_path):
        raise FileNotFoundError(f"No ML Metadata at {metadata_path}: give a pushed model's directory "
                                "<output-dir>/serving/<model>/<version>, or --metadata <output-dir>/metadata.db")
    config = pb.ConnectionConfig()
    config.sqlite.filename_uri, config.sqlite.connection_mode = metadata_path, pb.SqliteMetadataSourceConfig.READONLY
    store = metadata_store.MetadataStore(config)
    pushed = [a for a in store.get_artifacts_by_type("PushedModel")
              if _props(a).get("pushed_destination", "").rstrip("/").split("/")[-2:] == path.split("/")[-2:]]
    if not pushed:
        raise LookupError(f"{metadata_path} records no model pushed to {path}: give a version directory that "
                          "the pipeline pushed (ls <output-dir>/serving/<model>/)")
    pusher = _artifacts(store, _producer(store, pushed[-1]).id, pb.Event.INPUT)
    model, blessing = pusher["model"], pusher["model_blessing"]
    trainer = _producer(store, model)
    while not store.get_execution_types_by_id([trainer.type_id])[0].name.endswith(".Trainer"):
        trainer = _producer(store, _artifacts(store, trainer.id, pb.Event.INPUT)["model"])  # IndexBuilder's
    inputs, outputs = (_artifacts(store, trainer.id, kind) for kind in (pb.Event.INPUT, pb.Event.OUTPUT))
    transform = _artifacts(store, _producer(store, inputs["transform_graph"]).id, pb.Event.INPUT)
    examples = transform["examples"]
    example_gen = _props(_producer(store, examples))
    evaluation = _artifacts(store, _producer(store, blessing).id, pb.Event.OUTPUT)["evaluation"]
    exec_properties = _props(trainer)
    code = next((exec_properties[key] for key in CODE_VERSION_KEYS if key in exec_properties), None)
    return {"pushed": {"path": path, "version": _props(pushed[-1]).get("pushed_version"), "by": _node(pushed[-1])},
            "data": {"input_base": example_gen["input_base"], "release": _props(examples).get("release"),
                     "sha256": json.loads(_props(examples).get("input_sha256", "null"))},
            "split": {key: example_gen[key] for key in ("split", "eval_fraction", "split_seed", "leave_last_n")},
            "examples": examples.uri, "schema": inputs["schema"].uri,
            "schema_file": _props(_producer(store, inputs["schema"])).get("schema_file"),
            "transform_graph": inputs["transform_graph"].uri,
            "trainer": {"node": _node(outputs["model"]), "execution": trainer.id, "model": outputs["model"].uri,
                        "model_run": outputs["model_run"].uri, "exec_properties": exec_properties},
            "evaluation": {"node": _node(evaluation), "uri": evaluation.uri, "metrics": _props(evaluation)},
            "blessing": {"uri": blessing.uri, **_props(blessing)}, "code_version": code}


def describe(info: dict) -> str:
    """`lineage`'s answer in a few lines."""
    data, trainer, metrics = info["data"], info["trainer"], info["evaluation"]["metrics"]
    sha = ", ".join(f"{name} {digest[:12]}" for name, digest in data["sha256"].items()) if data["sha256"] else (
        "not recorded at ingestion (a run before the ExampleGen recorded them)")
    headline = ", ".join(f"{key} {value:.4f}" for key, value in sorted(metrics.items())
                         if key.endswith(("recall@10", "ndcg@10")))
    props = trainer["exec_properties"]
    return "\n".join([
        f"model:      {info['pushed']['path']} (version {info['pushed']['version']}, by {info['pushed']['by']})",
        f"data:       {data['input_base']} ({data['release'] or 'release not recorded'}); sha256 {sha}",
        "split:      " + ", ".join(f"{k} {v}" for k, v in info["split"].items()) + f" -> {info['examples']}",
        f"schema:     {info['schema']} (from {info['schema_file']})",
        f"transform:  {info['transform_graph']}",
        f"trainer:    {trainer['node']} (execution {trainer['execution']}): run_fn {props.get('run_fn')}, "
        f"custom_config {props.get('custom_config')} -> {trainer['model']}",
        f"evaluation: {info['evaluation']['node']}: {headline} ({info['evaluation']['uri']})",
        f"blessing:   {'blessed' if info['blessing'].get('blessed') else 'NOT blessed'}: "
        f"{info['blessing'].get('why', 'see ' + info['blessing']['uri'])}",
        f"code version: {info['code_version'] or 'not recorded'}"])


def main() -> None:
    parser = argparse.ArgumentParser(description="Where a pushed model came from (from ML Metadata).")
    parser.add_argument("pushed_dir", help="a pushed model version: <output-dir>/serving/<model>/<version>")
    parser.add_argument("--metadata", default="", help="ML Metadata SQLite file (default: <output-dir>/metadata.db)")
    parser.add_argument("--json", action="store_true", help="one JSON object, for scripts")
    args = parser.parse_args()
    try:
        info = lineage(args.pushed_dir, args.metadata)
    except (FileNotFoundError, LookupError) as error:
        parser.exit(2, f"{error}\n")
    print(json.dumps(info, indent=1) if args.json else describe(info))


if __name__ == "__main__":
    main()
