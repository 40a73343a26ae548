"""Compiles the same pipeline for Kubeflow Pipelines / Vertex AI (KubeflowV2DagRunner): the README's
"Beyond one machine" shows a whole command line and how to submit the JSON it writes. Every flag but
--beam-arg can come from the environment instead (the name in brackets in --help)."""
import argparse
import os

from pipeline import configs

IMAGE_SCHEMA_FILE = "/pipeline/pipeline/schema.pbtxt"  # where the Dockerfile puts pipeline/schema.pbtxt


def compile_pipeline(image: str, pipeline_root: str, data_dir: str, serving_dir: str,
                     output: str, beam_args: list) -> str:
    """Writes the pipeline JSON to `output` and returns its path."""
    from tfx import v1 as tfx

    from pipeline.pipeline import create_pipeline

    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(default_image=image),
        output_dir=os.path.dirname(output) or ".", output_filename=os.path.basename(output))
    runner.run(create_pipeline(
        configs.PIPELINE_NAME, pipeline_root, data_dir, serving_dir, beam_pipeline_args=beam_args or None,
        retrieval_config=configs.RETRIEVAL_CONFIG, ranking_config=configs.RANKING_CONFIG,
        schema_file=IMAGE_SCHEMA_FILE))
    return output


def main() -> None:
    parser = argparse.ArgumentParser(description="Compile the pipeline to Kubeflow V2 pipeline JSON.")

    def flag(name: str, env: str, help_text: str) -> None:
        parser.add_argument(name, default=os.environ.get(env), required=env not in os.environ,
                            help=f"{help_text} [{env}]")

    flag("--image", "RECSYS_IMAGE", "container image with the project installed (see Dockerfile)")
    flag("--pipeline-root", "RECSYS_PIPELINE_ROOT", "where artifacts go, e.g. gs://bucket/root")
    flag("--data-dir", "MOVIELENS_DIR", "ml-100k directory the components can read, e.g. gs://bucket/ml-100k")
    flag("--serving-dir", "RECSYS_SERVING_DIR", "where Pushers put models, e.g. gs://bucket/serving")
    parser.add_argument("--output", default=f"{configs.PIPELINE_NAME}.json", help="pipeline JSON to write")
    parser.add_argument("--beam-arg", action="append", default=[], dest="beam_args",
                        help="a Beam pipeline option for every Beam component, repeatable "
                             f"(default: {' '.join(configs.BEAM_PIPELINE_ARGS)})")
    args = parser.parse_args()
    print("Wrote", compile_pipeline(args.image, args.pipeline_root, args.data_dir, args.serving_dir,
                                    args.output, args.beam_args))


if __name__ == "__main__":
    main()
