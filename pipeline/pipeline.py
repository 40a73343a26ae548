"""create_pipeline(): every component of the MovieLens recommender pipeline, wired."""
from typing import List, Optional

from tfx import v1 as tfx

from components.catalogue import MovieCatalogueGen
from components.data_gate import DataGate
from components.index_builder import IndexBuilder
from components.movielens import MovieLensExampleGen
from components.retrieval_evaluator import RetrievalEvaluator
from components.two_stage_evaluator import TwoStageEvaluator
from models.ranking.constants import RankingConfig
from models.retrieval.constants import RetrievalConfig
from pipeline import code_version, configs


def _trainer(run_fn: str, transform, schema, config: dict, base_model=None) -> tfx.components.Trainer:
    return tfx.components.Trainer(
        run_fn=run_fn, examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"], schema=schema, base_model=base_model,
        train_args=tfx.proto.TrainArgs(), eval_args=tfx.proto.EvalArgs(), custom_config=config)


def _latest_blessed(node_id: str, producer: str, model_key: str, evaluator: str) -> tfx.dsl.Resolver:
    """The last model that `evaluator` blessed: the baseline a new model is compared against."""
    return tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model, producer_component_id=producer,
                              output_key=model_key),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing,
                                       producer_component_id=evaluator, output_key="blessing")).with_id(node_id)


def _pusher(node_id: str, model, blessing, serving_dir: str, name: str) -> tfx.components.Pusher:
    """Pushes blessed models into TF Serving's `serving_dir`/`name`/<version> layout."""
    return tfx.components.Pusher(model=model, model_blessing=blessing, push_destination=tfx.proto.PushDestination(
        filesystem=tfx.proto.PushDestination.Filesystem(base_directory=f"{serving_dir}/{name}"))).with_id(node_id)


def create_pipeline(pipeline_name: str, pipeline_root: str, data_dir: str, serving_dir: str,
                    metadata_path: Optional[str] = None, beam_pipeline_args: Optional[List[str]] = None,
                    retrieval_config: Optional[dict] = None, ranking_config: Optional[dict] = None,
                    num_candidates: int = configs.NUM_CANDIDATES,
                    schema_file: str = configs.SCHEMA_FILE, enable_cache: bool = False) -> tfx.dsl.Pipeline:
    """The pipeline, pushing to `serving_dir`/{retrieval,retrieval_bruteforce,ranking}/<version>. A mistyped
    model config key fails here, not in a Trainer. With `enable_cache`, components whose inputs, parameters
    and code (pipeline/code_version.py) are unchanged reuse their last outputs."""
    retrieval_config = retrieval_config or {}
    ranking_config = {"num_candidates": num_candidates, "retrieval": retrieval_config, **(ranking_config or {})}
    RetrievalConfig.of(retrieval_config)
    RankingConfig.of(ranking_config)

    # Ratings joined with user and movie features, split into train and eval.
    example_gen = MovieLensExampleGen(
        input_base=data_dir, split=configs.SPLIT, eval_fraction=configs.EVAL_FRACTION, split_seed=configs.SPLIT_SEED,
        leave_last_n=configs.LEAVE_LAST_N, max_bad_row_fraction=configs.MAX_BAD_ROW_FRACTION)
    # Every movie of the release with its features, rated or not: what the index is built from.
    catalogue_gen = MovieCatalogueGen(input_base=data_dir)
    # The curated schema kept in the repo (pipeline/schema.pbtxt).
    schema_gen = tfx.components.ImportSchemaGen(schema_file=schema_file)
    examples, catalogue = example_gen.outputs["examples"], catalogue_gen.outputs["catalogue"]
    schema = schema_gen.outputs["schema"]
    statistics_gen = tfx.components.StatisticsGen(examples=examples)
    statistics = statistics_gen.outputs["statistics"]
    example_validator = tfx.components.ExampleValidator(statistics=statistics, schema=schema)
    # Fails the run on any anomaly or train/eval drift, before anything is trained.
    data_gate = DataGate(statistics=statistics, schema=schema, anomalies=example_validator.outputs["anomalies"])
    # Vocabularies and buckets: the graph both models carry into serving (no statistics: unread).
    transform = tfx.components.Transform(examples=examples, schema=schema, disable_analyzer_cache=True,
                                         preprocessing_fn=configs.PREPROCESSING_FN, disable_statistics=True)
    transform.add_upstream_node(data_gate)
    retrieval_trainer = _trainer(configs.RETRIEVAL_RUN_FN, transform, schema, retrieval_config).with_id(
        "RetrievalTrainer")
    # ScaNN and brute-force indexes over every movie, behind a raw user_id signature.
    index_builder = IndexBuilder(model=retrieval_trainer.outputs["model"], examples=examples, catalogue=catalogue,
                                 num_candidates=num_candidates)
    scann, bruteforce = index_builder.outputs["scann_model"], index_builder.outputs["bruteforce_model"]
    retrieval_baseline = _latest_blessed("LatestBlessedRetrieval", "IndexBuilder", "bruteforce_model",
                                         "RetrievalEvaluator")
    # Recall, NDCG, coverage... on the eval split; blesses only above the floor and the baseline.
    retrieval_evaluator = RetrievalEvaluator(
        model=bruteforce, scann_model=scann, examples=examples, catalogue=catalogue,
        baseline_model=retrieval_baseline.outputs["model"],
        baseline_blessing=retrieval_baseline.outputs["model_blessing"], recall_floor=configs.RETRIEVAL_RECALL_FLOOR,
        max_regression=configs.RETRIEVAL_MAX_REGRESSION)
    retrieval_blessing = retrieval_evaluator.outputs["blessing"]
    # The rating model and the listwise re-ranker, on the candidates of a retrieval model like the served one.
    ranking_trainer = _trainer(configs.RANKING_RUN_FN, transform, schema, ranking_config,
                               base_model=retrieval_trainer.outputs["model"]).with_id("RankingTrainer")
    ranking_baseline = _latest_blessed("LatestBlessedRanking", "RankingTrainer", "model", "RankingEvaluator")
    # Blesses only when its order beats retrieval's own, the RMSE passes its gates and retrieval was blessed.
    ranking_evaluator = TwoStageEvaluator(
        ranking_model=ranking_trainer.outputs["model"], retrieval_model=bruteforce, examples=examples,
        catalogue=catalogue, retrieval_blessing=retrieval_blessing, baseline_model=ranking_baseline.outputs["model"],
        baseline_blessing=ranking_baseline.outputs["model_blessing"],
        min_ndcg_gain=configs.RANKING_MIN_NDCG_GAIN, rmse_ceiling=configs.RANKING_RMSE_CEILING,
        max_rmse_increase=configs.RANKING_MAX_RMSE_INCREASE).with_id("RankingEvaluator")

    components = [
        example_gen, catalogue_gen, statistics_gen, schema_gen, example_validator, data_gate, transform,
        retrieval_trainer, index_builder, retrieval_baseline, retrieval_evaluator,
        # The blessed models, pushed into TF Serving's <base>/<model>/<version> layout.
        _pusher("RetrievalPusher", scann, retrieval_blessing, serving_dir, "retrieval"),
        _pusher("BruteForcePusher", bruteforce, retrieval_blessing, serving_dir, "retrieval_bruteforce"),
        ranking_trainer, ranking_baseline, ranking_evaluator,
        _pusher("RankingPusher", ranking_trainer.outputs["model"], ranking_evaluator.outputs["blessing"], serving_dir,
                "ranking")]
    for component in components:
        code_version.stamp(component)
    return tfx.dsl.Pipeline(
        pipeline_name=pipeline_name, pipeline_root=pipeline_root, components=components, enable_cache=enable_cache,
        metadata_connection_config=(tfx.orchestration.metadata.sqlite_metadata_connection_config(
            metadata_path) if metadata_path else None),
        beam_pipeline_args=beam_pipeline_args or configs.BEAM_PIPELINE_ARGS)
