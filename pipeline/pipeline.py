"""create_pipeline(): every component of the MovieLens recommender pipeline, wired."""
from typing import Dict, List, Optional

from tfx import v1 as tfx
from tfx.dsl.components.base.base_node import BaseNode

from components.catalogue import MovieCatalogueGen
from components.data_gate import DataGate
from components.index_builder import IndexBuilder
from components.movielens import MovieLensExampleGen
from components.retrieval_evaluator import RetrievalEvaluator
from components.two_stage_evaluator import TwoStageEvaluator
from models.ranking.constants import RankingConfig
from models.retrieval.constants import RetrievalConfig
from pipeline import code_version, configs

Components = Dict[str, BaseNode]  # by role, e.g. "trainer"


def data_stages(data_dir: str, schema_file: str) -> Components:
    """From the MovieLens files to the validated, transformed splits both models train on."""
    stages = {"example_gen": MovieLensExampleGen(
        input_base=data_dir, split=configs.SPLIT, eval_fraction=configs.EVAL_FRACTION, split_seed=configs.SPLIT_SEED,
        leave_last_n=configs.LEAVE_LAST_N, max_bad_row_fraction=configs.MAX_BAD_ROW_FRACTION),
        "catalogue_gen": MovieCatalogueGen(input_base=data_dir),  # every movie, rated or not: the index's
        "schema_gen": tfx.components.ImportSchemaGen(schema_file=schema_file)}  # curated: pipeline/schema.pbtxt
    examples, schema = stages["example_gen"].outputs["examples"], stages["schema_gen"].outputs["schema"]
    stages["statistics_gen"] = tfx.components.StatisticsGen(examples=examples)
    statistics = stages["statistics_gen"].outputs["statistics"]
    stages["example_validator"] = tfx.components.ExampleValidator(statistics=statistics, schema=schema)
    # Fails the run on any anomaly or train/eval drift, before anything is trained.
    stages["data_gate"] = DataGate(statistics=statistics, schema=schema,
                                   anomalies=stages["example_validator"].outputs["anomalies"])
    # The graph that both models carry into serving (no statistics: unread).
    stages["transform"] = tfx.components.Transform(examples=examples, schema=schema, disable_analyzer_cache=True,
                                                   preprocessing_fn=configs.PREPROCESSING_FN, disable_statistics=True)
    stages["transform"].add_upstream_node(stages["data_gate"])
    return stages


def _trainer(data: Components, run_fn: str, config: dict, base_model=None) -> tfx.components.Trainer:
    return tfx.components.Trainer(
        run_fn=run_fn, examples=data["transform"].outputs["transformed_examples"],
        transform_graph=data["transform"].outputs["transform_graph"], schema=data["schema_gen"].outputs["schema"],
        base_model=base_model, train_args=tfx.proto.TrainArgs(), eval_args=tfx.proto.EvalArgs(),
        custom_config=config)


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


def retrieval_branch(data: Components, config: dict, num_candidates: int, serving_dir: str) -> Components:
    """The two-tower retrieval model: trained, indexed, evaluated against the last blessed one, pushed."""
    examples, catalogue = data["example_gen"].outputs["examples"], data["catalogue_gen"].outputs["catalogue"]
    stages = {"trainer": _trainer(data, configs.RETRIEVAL_RUN_FN, config).with_id("RetrievalTrainer"),
              "baseline": _latest_blessed("LatestBlessedRetrieval", "IndexBuilder", "bruteforce_model",
                                          "RetrievalEvaluator")}
    # ScaNN and brute-force indexes over every movie, behind a raw user_id signature.
    stages["index_builder"] = IndexBuilder(model=stages["trainer"].outputs["model"], examples=examples,
                                           catalogue=catalogue, num_candidates=num_candidates)
    scann, bruteforce = (stages["index_builder"].outputs[key] for key in ("scann_model", "bruteforce_model"))
    # Blesses only above the recall floor and the baseline.
    stages["evaluator"] = RetrievalEvaluator(
        model=bruteforce, scann_model=scann, examples=examples, catalogue=catalogue,
        baseline_model=stages["baseline"].outputs["model"], recall_floor=configs.RETRIEVAL_RECALL_FLOOR,
        max_regression=configs.RETRIEVAL_MAX_REGRESSION)
    blessing = stages["evaluator"].outputs["blessing"]
    stages["pusher"] = _pusher("RetrievalPusher", scann, blessing, serving_dir, "retrieval")
    stages["bruteforce_pusher"] = _pusher("BruteForcePusher", bruteforce, blessing, serving_dir,
                                          "retrieval_bruteforce")
    return stages


def ranking_branch(data: Components, retrieval: Components, config: dict, serving_dir: str) -> Components:
    """The ranking model: trained on the retrieval model's candidates, evaluated, pushed."""
    # The DCN rating model and the listwise re-ranker: trained on the candidates of a retrieval model
    # like the served one (its config) fitted without the movies held out as positives.
    trainer = _trainer(data, configs.RANKING_RUN_FN, config, base_model=retrieval["trainer"].outputs["model"])
    stages = {"trainer": trainer.with_id("RankingTrainer"),
              "baseline": _latest_blessed("LatestBlessedRanking", "RankingTrainer", "model", "RankingEvaluator")}
    # Blesses the ranking model only when its order of retrieval's candidates beats retrieval's own, the rating
    # RMSE passes its gates (the ceiling, the last blessed model's) and retrieval was blessed.
    stages["evaluator"] = TwoStageEvaluator(
        ranking_model=trainer.outputs["model"], examples=data["example_gen"].outputs["examples"],
        retrieval_model=retrieval["index_builder"].outputs["bruteforce_model"],
        catalogue=data["catalogue_gen"].outputs["catalogue"],
        retrieval_blessing=retrieval["evaluator"].outputs["blessing"],
        baseline_model=stages["baseline"].outputs["model"], min_ndcg_gain=configs.RANKING_MIN_NDCG_GAIN,
        rmse_ceiling=configs.RANKING_RMSE_CEILING, max_rmse_increase=configs.RANKING_MAX_RMSE_INCREASE,
    ).with_id("RankingEvaluator")
    stages["pusher"] = _pusher("RankingPusher", trainer.outputs["model"], stages["evaluator"].outputs["blessing"],
                               serving_dir, "ranking")
    return stages


def create_pipeline(pipeline_name: str, pipeline_root: str, data_dir: str, serving_dir: str,
                    metadata_path: Optional[str] = None, beam_pipeline_args: Optional[List[str]] = None,
                    retrieval_config: Optional[dict] = None, ranking_config: Optional[dict] = None,
                    num_candidates: int = configs.NUM_CANDIDATES,
                    schema_file: str = configs.SCHEMA_FILE, enable_cache: bool = False) -> tfx.dsl.Pipeline:
    """The pipeline; models are pushed to `serving_dir`/{retrieval,retrieval_bruteforce,ranking}/<version>.
    The model configs (dicts of RetrievalConfig / RankingConfig keys) are checked here: a
    mistyped key fails now, not in a Trainer. With `enable_cache` (LocalDagRunner) components whose inputs,
    parameters and code (pipeline/code_version.py) are unchanged reuse their last outputs."""
    retrieval_config = retrieval_config or {}
    ranking_config = {"num_candidates": num_candidates, "retrieval": retrieval_config, **(ranking_config or {})}
    RetrievalConfig.of(retrieval_config)
    RankingConfig.of(ranking_config)
    data = data_stages(data_dir, schema_file)
    retrieval = retrieval_branch(data, retrieval_config, num_candidates, serving_dir)
    ranking = ranking_branch(data, retrieval, ranking_config, serving_dir)
    components = [*data.values(), *retrieval.values(), *ranking.values()]
    for component in components:
        code_version.stamp(component)
    return tfx.dsl.Pipeline(
        pipeline_name=pipeline_name, pipeline_root=pipeline_root, components=components, enable_cache=enable_cache,
        metadata_connection_config=(tfx.orchestration.metadata.sqlite_metadata_connection_config(
            metadata_path) if metadata_path else None),
        beam_pipeline_args=beam_pipeline_args or configs.BEAM_PIPELINE_ARGS)
