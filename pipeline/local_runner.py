"""Runs the pipeline on this machine with LocalDagRunner; ML Metadata in SQLite.

    python -m pipeline.local_runner --output-dir /tmp/run --epochs 2   # downloads ml-100k
    python -m pipeline.local_runner --until Transform   # only the data stages
    python -m pipeline.local_runner --no-cache   # else unchanged components reuse their last outputs

Artifacts land in <output-dir>/pipeline, metadata in <output-dir>/metadata.db and the
pushed models in <output-dir>/serving/<model>/<version>.
"""
import argparse
import logging
import os
import time
from typing import List, Optional

from pipeline import configs, data


class ComponentTimes(logging.Handler):
    """Prints each component's start and end (wall time; or "from the cache") from LocalDagRunner's log
    (it runs one component at a time)."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg == "Component %s is running.":
            self.started, self.cached = time.monotonic(), False
            print(f"{record.args[0]} ...", flush=True)
        elif record.msg == "A cached execution %d is used.":
            self.cached = True
        elif record.msg == "Component %s is finished.":
            seconds = time.monotonic() - self.started
            print(f"{record.args[0]} {'from the cache' if self.cached else 'done'} ({seconds:.0f} s)", flush=True)


def run(data_dir: str, output_dir: str, epochs: Optional[int] = None,
        beam_args: Optional[List[str]] = None, retrieval_config: Optional[dict] = None,
        until: Optional[str] = None, cache: bool = True) -> str:
    """Runs the pipeline (up to component `until`, if given; without `cache`, every component);
    returns the models' directory. `retrieval_config` overrides configs.RETRIEVAL_CONFIG by key."""
    from absl import logging as absl_logging
    from tfx import v1 as tfx
    from tfx.orchestration import pipeline as tfx_pipeline

    from pipeline.pipeline import create_pipeline

    output_dir = os.path.abspath(output_dir)
    override = {"epochs": epochs} if epochs else {}
    pipeline = create_pipeline(
        configs.PIPELINE_NAME, os.path.join(output_dir, "pipeline"), str(data_dir), os.path.join(output_dir, "serving"),
        os.path.join(output_dir, "metadata.db"), beam_args, enable_cache=cache,
        retrieval_config={**configs.RETRIEVAL_CONFIG, **override, **(retrieval_config or {})},
        ranking_config={**configs.RANKING_CONFIG, **override})
    options = tfx_pipeline.RunOptions(to_nodes=[until]) if until else None  # a partial run
    # LocalDagRunner logs each component's start and end at INFO, as TFX's templates show them.
    # (The absl flag, not only the logger's level: TensorFlow's SavedModel export restores the flag.)
    absl_logging.set_verbosity(absl_logging.INFO)
    times = ComponentTimes()
    absl_logging.get_absl_logger().addHandler(times)
    try:
        tfx.orchestration.LocalDagRunner().run(pipeline, run_options=options)
    finally:
        absl_logging.get_absl_logger().removeHandler(times)
    if not until:
        from pipeline import report
        print(f"Run report: {report.write(output_dir)}", flush=True)
    return os.path.join(output_dir, "serving")


def arguments(description: str) -> argparse.ArgumentParser:
    """The command line of a pipeline run (this module's and demo.py's)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data-dir", "--data-source", help="MovieLens directory, any release, or tfds:movielens/"
                        "<100k|1m|20m|25m|latest-small>: TensorFlow Datasets' (default: $MOVIELENS_DIR, else "
                        "download ml-100k)")
    parser.add_argument("--tfds-data-dir", help="where TFDS prepared it (default: $TFDS_DATA_DIR, else "
                        "~/tensorflow_datasets)")
    parser.add_argument("--output-dir", default=configs.OUTPUT_DIR, help="where artifacts and models go")
    parser.add_argument("--epochs", type=int, help="training epochs of both models (default: constants)")
    parser.add_argument("--no-cache", dest="cache", action="store_false",
                        help="run every component, even those whose inputs, parameters and code are unchanged")
    return parser


def main() -> None:
    parser = arguments("Run the MovieLens TFX pipeline locally.")
    parser.add_argument("--beam-arg", action="append", default=[], dest="beam_args",
                        help="a Beam pipeline option for every Beam component, repeatable, e.g. "
                             "--beam-arg=--direct_running_mode=multi_processing "
                             f"(default: {' '.join(configs.BEAM_PIPELINE_ARGS)})")
    parser.add_argument("--until", help="run only this component and what it depends on, e.g. Transform")
    args = parser.parse_args()
    serving_dir = run(data.resolve(args.data_dir, args.tfds_data_dir), args.output_dir, args.epochs, args.beam_args,
                      until=args.until, cache=args.cache)
    print(f"Ran up to {args.until}; artifacts in {args.output_dir}" if args.until
          else f"Models pushed to {serving_dir}")


if __name__ == "__main__":
    main()
