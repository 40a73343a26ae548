"""create_pipeline(): every component of the MovieLens recommender pipeline, wired."""
from typing import List, Optional

from tfx import v1 as tfx

from components.catalogue import MovieCatalogueGen
from components.data_gate import DataGate
from components.index_builder import IndexBuilder
from components.movielens import MovieLensExampleGen
from pipeline import configs


def create_pipeline(pipeline_name: str, pipeline_root: str, data_dir: str, serving_dir: str,
                    metadata_path: Optional[str] = None,
                    beam_pipeline_args: Optional[List[str]] = None,
                    retrieval_config: Optional[dict] = None,
                    ranking_config: Optional[dict] = None,
                    num_candidates: int = configs.NUM_CANDIDATES,
                    schema_file: str = configs.SCHEMA_FILE) -> tfx.dsl.Pipeline:
    """The pipeline; models are pushed to `serving_dir`/{retrieval,retrieval_bruteforce,ranking}/<version>."""
    # Ratings joined with user and movie features, split into train and eval.
    example_gen = MovieLensExampleGen(
        input_base=data_dir, split=configs.SPLIT, eval_fraction=configs.EVAL_FRACTION,
        split_seed=configs.SPLIT_SEED, leave_last_n=configs.LEAVE_LAST_N,
        max_bad_row_fraction=configs.MAX_BAD_ROW_FRACTION)
    # Every movie of the release with its features, rated or not: what the index is built from.
    catalogue_gen = MovieCatalogueGen(input_base=data_dir)
    # Feature statistics of both splits.
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    # The curated schema kept in the repo (pipeline/schema.pbtxt).
    schema_gen = tfx.components.ImportSchemaGen(schema_file=schema_file)
    # Anomalies of each split against the schema.
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"])
    # Fails the run on any anomaly or train/eval drift, before anything is trained.
    data_gate = DataGate(statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"],
                         anomalies=example_validator.outputs["anomalies"])
    # Vocabularies and buckets; the graph that both models carry into serving.
    transform = tfx.components.Transform(
        examples=example_gen.outputs["examples"], schema=schema_gen.outputs["schema"],
        preprocessing_fn=configs.PREPROCESSING_FN)
    transform.add_upstream_node(data_gate)

    def trainer(run_fn: str, config: Optional[dict]) -> tfx.components.Trainer:
        return tfx.components.Trainer(
            run_fn=run_fn, examples=transform.outputs["transformed_examples"],
            transform_graph=transform.outputs["transform_graph"], schema=schema_gen.outputs["schema"],
            train_args=tfx.proto.TrainArgs(), eval_args=tfx.proto.EvalArgs(), custom_config=config or {})

    def pusher(model, name: str) -> tfx.components.Pusher:
        return tfx.components.Pusher(model=model, push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=f"{serving_dir}/{name}")))

    # The two-tower retrieval model (query and candidate towers).
    retrieval_trainer = trainer(configs.RETRIEVAL_RUN_FN, retrieval_config).with_id("RetrievalTrainer")
    # ScaNN and brute-force indexes over every movie, behind a raw user_id signature.
    index_builder = IndexBuilder(model=retrieval_trainer.outputs["model"],
                                 examples=example_gen.outputs["examples"],
                                 num_candidates=num_candidates)
    # The DCN ranking model.
    ranking_trainer = trainer(configs.RANKING_RUN_FN, ranking_config).with_id("RankingTrainer")
    # Pushes into TF Serving's <base>/<model>/<version> layout.
    pushers = [pusher(index_builder.outputs["scann_model"], "retrieval").with_id("RetrievalPusher"),
               pusher(index_builder.outputs["bruteforce_model"], "retrieval_bruteforce")
               .with_id("BruteForcePusher"),
               pusher(ranking_trainer.outputs["model"], "ranking").with_id("RankingPusher")]

    return tfx.dsl.Pipeline(
        pipeline_name=pipeline_name, pipeline_root=pipeline_root,
        components=[example_gen, catalogue_gen, statistics_gen, schema_gen, example_validator, data_gate,
                    transform, retrieval_trainer, index_builder, ranking_trainer, *pushers],
        metadata_connection_config=(tfx.orchestration.metadata.sqlite_metadata_connection_config(
            metadata_path) if metadata_path else None),
        beam_pipeline_args=beam_pipeline_args or configs.BEAM_PIPELINE_ARGS)
