"""create_pipeline(): every component of the MovieLens recommender pipeline, wired."""
from typing import List, Optional

from tfx import v1 as tfx

from components.catalogue import MovieCatalogueGen
from components.data_gate import DataGate
from components.index_builder import IndexBuilder
from components.movielens import MovieLensExampleGen
from components.retrieval_evaluator import RetrievalEvaluator
from components.two_stage_evaluator import TwoStageEvaluator
from models.ranking import evaluation as ranking_evaluation
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

    def trainer(run_fn: str, config: Optional[dict], base_model=None) -> tfx.components.Trainer:
        return tfx.components.Trainer(
            run_fn=run_fn, examples=transform.outputs["transformed_examples"],
            transform_graph=transform.outputs["transform_graph"], schema=schema_gen.outputs["schema"],
            base_model=base_model, train_args=tfx.proto.TrainArgs(), eval_args=tfx.proto.EvalArgs(),
            custom_config=config or {})

    def latest_blessed(producer: str, model_key: str, evaluator: str) -> tfx.dsl.Resolver:
        return tfx.dsl.Resolver(
            strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
            model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model, producer_component_id=producer,
                                  output_key=model_key),
            model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing,
                                           producer_component_id=evaluator, output_key="blessing"))

    def pusher(model, blessing, name: str) -> tfx.components.Pusher:
        return tfx.components.Pusher(model=model, model_blessing=blessing, push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=f"{serving_dir}/{name}")))

    # The two-tower retrieval model (query and candidate towers).
    retrieval_trainer = trainer(configs.RETRIEVAL_RUN_FN, retrieval_config).with_id("RetrievalTrainer")
    # ScaNN and brute-force indexes over every movie, behind a raw user_id signature.
    index_builder = IndexBuilder(model=retrieval_trainer.outputs["model"],
                                 examples=example_gen.outputs["examples"],
                                 catalogue=catalogue_gen.outputs["catalogue"],
                                 num_candidates=num_candidates)
    # The last retrieval model that was blessed, to compare the new one against.
    retrieval_baseline = latest_blessed("IndexBuilder", "bruteforce_model", "RetrievalEvaluator").with_id(
        "LatestBlessedRetrieval")
    # Recall, NDCG, coverage... on the eval split; blesses only above the floor and the baseline.
    retrieval_evaluator = RetrievalEvaluator(
        model=index_builder.outputs["bruteforce_model"], scann_model=index_builder.outputs["scann_model"],
        examples=example_gen.outputs["examples"], catalogue=catalogue_gen.outputs["catalogue"],
        baseline_model=retrieval_baseline.outputs["model"], recall_floor=configs.RETRIEVAL_RECALL_FLOOR,
        max_regression=configs.RETRIEVAL_MAX_REGRESSION)
    retrieval_blessing = retrieval_evaluator.outputs["blessing"]
    # The DCN rating model and the listwise re-ranker: trained on the candidates of a retrieval model
    # like the served one (its config) fitted without the movies held out as positives.
    ranking_trainer = trainer(configs.RANKING_RUN_FN, {"num_candidates": num_candidates,
                                                       "retrieval": retrieval_config or {}, **(ranking_config or {})},
                              base_model=retrieval_trainer.outputs["model"]).with_id("RankingTrainer")
    # The last ranking model that was blessed, to compare the new one against.
    ranking_baseline = latest_blessed("RankingTrainer", "model", "RankingEvaluator").with_id("LatestBlessedRanking")
    # TFMA on the raw eval split: RMSE, MAE, AUC, calibration, by user gender; blesses under the RMSE gates.
    rating_evaluator = tfx.components.Evaluator(
        examples=example_gen.outputs["examples"], model=ranking_trainer.outputs["model"],
        baseline_model=ranking_baseline.outputs["model"], example_splits=["eval"],
        eval_config=ranking_evaluation.eval_config(configs.RANKING_RMSE_CEILING, configs.RANKING_MAX_RMSE_INCREASE),
    ).with_id("RatingEvaluator")
    # The served order (retrieval's candidates by the ranking score) against retrieval's own; blesses
    # the ranking model only when it is better, TFMA blessed its ratings and retrieval was blessed.
    ranking_evaluator = TwoStageEvaluator(
        ranking_model=ranking_trainer.outputs["model"], retrieval_model=index_builder.outputs["bruteforce_model"],
        examples=example_gen.outputs["examples"], catalogue=catalogue_gen.outputs["catalogue"],
        rating_blessing=rating_evaluator.outputs["blessing"], retrieval_blessing=retrieval_blessing,
        min_ndcg_gain=configs.RANKING_MIN_NDCG_GAIN,
    ).with_id("RankingEvaluator")
    # Pushes blessed models into TF Serving's <base>/<model>/<version> layout.
    pushers = [pusher(index_builder.outputs["scann_model"], retrieval_blessing, "retrieval")
               .with_id("RetrievalPusher"),
               pusher(index_builder.outputs["bruteforce_model"], retrieval_blessing, "retrieval_bruteforce")
               .with_id("BruteForcePusher"),
               pusher(ranking_trainer.outputs["model"], ranking_evaluator.outputs["blessing"], "ranking")
               .with_id("RankingPusher")]

    return tfx.dsl.Pipeline(
        pipeline_name=pipeline_name, pipeline_root=pipeline_root,
        components=[example_gen, catalogue_gen, statistics_gen, schema_gen, example_validator, data_gate,
                    transform, retrieval_trainer, index_builder, retrieval_baseline, retrieval_evaluator,
                    ranking_trainer, ranking_baseline, rating_evaluator, ranking_evaluator, *pushers],
        metadata_connection_config=(tfx.orchestration.metadata.sqlite_metadata_connection_config(
            metadata_path) if metadata_path else None),
        beam_pipeline_args=beam_pipeline_args or configs.BEAM_PIPELINE_ARGS)
