"""Runs the pipeline on this machine with LocalDagRunner; ML Metadata in SQLite.

    python -m pipeline.local_runner --data-dir ../shared/data/movielens/ml-100k
    python -m pipeline.local_runner --output-dir /tmp/run --epochs 2   # downloads ml-100k
    python -m pipeline.local_runner --beam-arg=--direct_running_mode=multi_processing \
        --beam-arg=--direct_num_workers=2

Artifacts land in <output-dir>/pipeline, metadata in <output-dir>/metadata.db and the
pushed models in <output-dir>/serving/<model>/<version>.
"""
import argparse
import os
from typing import List, Optional

from pipeline import configs, data


def run(data_dir: str, output_dir: str, epochs: Optional[int] = None,
        beam_args: Optional[List[str]] = None) -> str:
    """Runs the whole pipeline; returns the directory the models were pushed to."""
    from tfx import v1 as tfx

    from pipeline.pipeline import create_pipeline

    output_dir = os.path.abspath(output_dir)
    serving_dir = os.path.join(output_dir, "serving")
    override = {"epochs": epochs} if epochs else {}
    tfx.orchestration.LocalDagRunner().run(create_pipeline(
        pipeline_name=configs.PIPELINE_NAME,
        pipeline_root=os.path.join(output_dir, "pipeline"),
        data_dir=str(data_dir), serving_dir=serving_dir,
        metadata_path=os.path.join(output_dir, "metadata.db"), beam_pipeline_args=beam_args,
        retrieval_config={**configs.RETRIEVAL_CONFIG, **override},
        ranking_config={**configs.RANKING_CONFIG, **override}))
    return serving_dir


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the MovieLens TFX pipeline locally.")
    parser.add_argument("--data-dir", help="ml-100k directory (default: $MOVIELENS_DIR, else download)")
    parser.add_argument("--output-dir", default=configs.OUTPUT_DIR, help="where artifacts and models go")
    parser.add_argument("--epochs", type=int, help="training epochs of both models (default: constants)")
    parser.add_argument("--beam-arg", action="append", default=[], dest="beam_args",
                        help="a Beam pipeline option for every Beam component, repeatable, e.g. "
                             "--beam-arg=--direct_running_mode=multi_processing "
                             f"(default: {' '.join(configs.BEAM_PIPELINE_ARGS)})")
    args = parser.parse_args()
    print("Models pushed to", run(data.resolve(args.data_dir), args.output_dir, args.epochs, args.beam_args))


if __name__ == "__main__":
    main()
