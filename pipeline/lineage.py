"""Where a pushed model came from, from its run's ML Metadata: PushedModel -> Pusher -> Model,
ModelBlessing -> evaluator, Trainer -> Transform graph, Examples, Schema -> ExampleGen.

    python -m pipeline.lineage outputs/serving/ranking/<version>          # a few lines
    python -m pipeline.lineage outputs/serving/retrieval/<version> --json
"""
import argparse
import json
import os

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2 as pb


def _props(message) -> dict:
    return {k: getattr(v, v.WhichOneof("value")) for k, v in message.custom_properties.items()
            if k not in ("is_external", "tfx_version")}  # TFX's bookkeeping


def _io(store, execution: pb.Execution, kind: int = pb.Event.INPUT) -> dict:
    events = [e for e in store.get_events_by_execution_ids([execution.id]) if e.type == kind]
    return {e.path.steps[0].key: store.get_artifacts_by_id([e.artifact_id])[0] for e in events}


def _producer(store, artifact: pb.Artifact) -> pb.Execution:
    event = next(e for e in store.get_events_by_artifact_ids([artifact.id]) if e.type == pb.Event.OUTPUT)
    return store.get_executions_by_id([event.execution_id])[0]


def lineage(pushed_dir: str, metadata_path: str = "") -> dict:
    """The lineage of the model pushed to `pushed_dir` (<output>/serving/<model>/<version>, found
    by <model>/<version>), from `metadata_path` (default <output>/metadata.db). Node ids are read
    from artifact URIs: <pipeline root>/<node id>/<output key>/<execution id>."""
    path = os.path.abspath(pushed_dir).rstrip("/")
    metadata_path = metadata_path or os.path.normpath(os.path.join(path, "../../../metadata.db"))
    if not os.path.isfile(metadata_path):
        raise FileNotFoundError(f"No ML Metadata at {metadata_path}: give a pushed model's directory "
                                "<output-dir>/serving/<model>/<version>, or --metadata <output-dir>/metadata.db")
    store = metadata_store.MetadataStore(pb.ConnectionConfig(sqlite=pb.SqliteMetadataSourceConfig(
        filename_uri=metadata_path, connection_mode=pb.SqliteMetadataSourceConfig.READONLY)))
    pushed = [a for a in store.get_artifacts_by_type("PushedModel")
              if _props(a).get("pushed_destination", "").rstrip("/").split("/")[-2:] == path.split("/")[-2:]]
    if not pushed:
        raise LookupError(f"{metadata_path} records no model pushed to {path}: give a version directory "
                          "the pipeline pushed (ls <output-dir>/serving/<model>/)")
    pusher = _io(store, _producer(store, pushed[-1]))
    trainer = _producer(store, pusher["model"])
    while not store.get_execution_types_by_id([trainer.type_id])[0].name.endswith(".Trainer"):
        trainer = _producer(store, _io(store, trainer)["model"])  # the IndexBuilder's model
    inputs, model = _io(store, trainer), _io(store, trainer, pb.Event.OUTPUT)["model"]
    examples = _io(store, _producer(store, inputs["transform_graph"]))["examples"]
    evaluation = _io(store, _producer(store, pusher["model_blessing"]), pb.Event.OUTPUT)["evaluation"]
    example_gen, data, trainer_properties = _props(_producer(store, examples)), _props(examples), _props(trainer)
    return {"model": path, "version": _props(pushed[-1])["pushed_version"], "pushed_by": pushed[-1].uri.split("/")[-3],
            "data": example_gen["input_base"], "release": data.get("release"),
            "sha256": json.loads(data.get("input_sha256", "null")), "examples": examples.uri,
            "split": {k: example_gen[k] for k in ("split", "eval_fraction", "split_seed", "leave_last_n")},
            "schema": inputs["schema"].uri, "schema_file": _props(_producer(store, inputs["schema"]))["schema_file"],
            "transform_graph": inputs["transform_graph"].uri, "trainer": model.uri.split("/")[-3],
            "trainer_execution": trainer.id, "trainer_model": model.uri, "trainer_properties": trainer_properties,
            "evaluator": evaluation.uri.split("/")[-3], "evaluation": evaluation.uri, "metrics": _props(evaluation),
            "blessing": {"uri": pusher["model_blessing"].uri, **_props(pusher["model_blessing"])},
            "code_version": trainer_properties.get("code_version")}  # pipeline/code_version.py


def describe(info: dict) -> str:
    """`lineage`'s answer in a few lines."""
    sha = ", ".join(f"{name} {digest[:16]}" for name, digest in (info["sha256"] or {}).items()) or "not recorded"
    trainer, blessing, metrics = info["trainer_properties"], info["blessing"], sorted(info["metrics"].items())
    return "\n".join([
        f"model:        {info['model']} (version {info['version']}, pushed by {info['pushed_by']})",
        f"data:         {info['data']} ({info['release'] or 'release not recorded'}); sha256 {sha}",
        "split:        " + ", ".join(f"{k} {v}" for k, v in info["split"].items()) + f" -> {info['examples']}",
        f"schema:       {info['schema']} (from {info['schema_file']})\ntransform:    {info['transform_graph']}",
        f"trainer:      {info['trainer']} (execution {info['trainer_execution']}): run_fn {trainer.get('run_fn')}, "
        f"custom_config {trainer.get('custom_config')} -> {info['trainer_model']}",
        f"evaluation:   {info['evaluator']}: " + ", ".join(
            f"{k} {v:.4f}" for k, v in metrics if k.endswith(("recall@10", "ndcg@10"))) + f" ({info['evaluation']})",
        f"blessing:     {'blessed' if blessing.get('blessed') else 'NOT blessed'}: {blessing.get('why', '')}",
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
