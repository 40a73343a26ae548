"""Pipeline configuration: names, paths and the knobs a user changes between runs."""
import os

PIPELINE_NAME = "movielens-recsys"
OUTPUT_DIR = os.environ.get("RECSYS_OUTPUT_DIR", "outputs")  # artifacts, ML Metadata, pushed models

PREPROCESSING_FN = "models.features.preprocessing_fn"
SCHEMA_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schema.pbtxt")  # curated
RETRIEVAL_RUN_FN = "models.retrieval.model.run_fn"
RANKING_RUN_FN = "models.ranking.export.run_fn"

SPLIT = "random"  # "random" (seeded hash), "temporal" (global time cut) or "leave_last_n" (per user)
EVAL_FRACTION = 0.2  # share of ratings in the eval split (random and temporal splits)
SPLIT_SEED = 42  # the random split's seed; same seed and input, same split
LEAVE_LAST_N = 1  # leave_last_n: each user's last n ratings by timestamp are eval
MAX_BAD_ROW_FRACTION = 0.0  # 0: the first bad ratings row stops the run; above: counted, reported
NUM_CANDIDATES = 100  # movies the retrieval models return per user
RETRIEVAL_RECALL_FLOOR = 0.05  # retrieval is pushed only at recall@10 >= this (popularity: ~0.11)...
RETRIEVAL_MAX_REGRESSION = 0.0  # ...and not below the last blessed model's recall@10 minus this
RETRIEVAL_CONFIG: dict = {}  # overrides of models/retrieval/constants.py, e.g. {"epochs": 2}
RANKING_CONFIG: dict = {}  # overrides of models/ranking/constants.py
RANKING_RMSE_CEILING = 1.1  # ranking is pushed only at eval RMSE <= this (ML-100K global mean: 1.13)...
RANKING_MAX_RMSE_INCREASE = 0.01  # ...and at most this above the last blessed ranking model's RMSE
RANKING_MIN_NDCG_GAIN = 0.0  # ...and its order's NDCG@10 at least retrieval's own plus this

# Beam's DirectRunner in this process; see README for Dataflow, Flink and Spark.
BEAM_PIPELINE_ARGS = ["--direct_running_mode=in_memory", "--direct_num_workers=1"]
