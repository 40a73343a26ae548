"""Hyper-parameters of the DCN ranking model (override any with the Trainer's custom_config)."""
import dataclasses
from typing import Optional, Tuple

from models.config import Config
from models.retrieval.constants import RetrievalConfig


@dataclasses.dataclass(frozen=True)
class RankingConfig(Config):
    """The ranking model's knobs; `RankingConfig.of(custom_config)` rejects unknown keys."""

    embedding_dim: int = 32
    deep_layers: Tuple[int, ...] = (64, 32)
    cross_layers: int = 2  # 0 = the plain deep network of the same size
    structure: str = "stacked"  # "stacked": cross layers feed the deep network; "parallel": side by side
    projection_dim: Optional[int] = 32  # low-rank cross kernels; None = full rank (validation RMSE alike, 5x dearer)
    rating_weight: float = 1.0  # loss = rating_weight * MSE(rating) + liked_weight * BCE(liked)
    liked_weight: float = 0.5
    negative_weight: float = 1.0  # like-head loss weight of in-batch unrated pairs (0 = ratings only; model.py)
    l2: float = 1e-4  # L2 penalty on the embeddings
    batch_size: int = 1024
    epochs: int = 4  # the lowest validation RMSE (benchmarks/RESULTS.md)
    patience: int = 0  # 0: train all epochs; n: stop after n epochs without a lower eval RMSE
    learning_rate: float = 0.005
    # Transformed features the model reads, where Transform produces them.
    user_features: Tuple[str, ...] = ("user_id", "user_age", "user_gender", "user_occupation", "user_zip")
    movie_features: Tuple[str, ...] = ("movie_id", "movie_year", "movie_genres", "movie_title", "movie_tags")
    # The listwise re-ranker (candidates.py, relations.py): what orders retrieval's candidates in serving.
    num_candidates: int = 200  # candidates per training list (the pipeline passes the number it serves)
    holdout: float = 0.2  # share of each training user's movies held out as the lists' positives
    holdout_seed: int = 7
    ease_lambdas: Tuple[float, ...] = (30.0, 100.0, 300.0, 1000.0, 3000.0)  # EASE's L2 weight: best on held-out
    neighbours: int = 200  # EASE weights kept per movie
    list_cross_layers: int = 0  # 0, no deep layers: a weighted sum (chosen on validation lists: steadier than a Cross)
    list_deep_layers: Tuple[int, ...] = ()
    list_batch_size: int = 32  # lists per step
    list_epochs: int = 40  # at most; stops when the loss on a tenth of the lists stops improving
    list_patience: int = 4
    list_learning_rate: float = 0.01
    verbose: int = 1  # 0: the listwise re-ranker trains silently; else one line per epoch
    # The config of the retrieval model trained without the held-out movies (the pipeline
    # passes the served one's), a dict of RetrievalConfig keys.
    retrieval: RetrievalConfig = dataclasses.field(default_factory=RetrievalConfig)

    def __post_init__(self):
        object.__setattr__(self, "retrieval", RetrievalConfig.of(self.retrieval))
