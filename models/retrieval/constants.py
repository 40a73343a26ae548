"""Hyper-parameters of the two-tower retrieval model (override any with the Trainer's custom_config)."""
import dataclasses
from typing import Tuple

from models.config import Config

MAX_HISTORY = 200  # most request-history movies per row the serving signatures take (INVALID_ARGUMENT past it)


@dataclasses.dataclass(frozen=True)
class RetrievalConfig(Config):
    """The retrieval model's knobs; `RetrievalConfig.of(custom_config)` rejects unknown keys."""

    embedding_dim: int = 64
    layers: Tuple[int, ...] = (128,)  # hidden layers of each tower's MLP, before the output of embedding_dim
    use_history: bool = True  # the query tower adds the mean embedding of the user's training movies
    history_share: float = 0.2  # training: the share of each history the query reads, the rest its targets (RESULTS.md)
    anonymous_share: float = 0.3  # training: the share of users whose id is hidden, so new users' id row is trained
    temperature: float = 0.1  # chosen on validation data (benchmarks/RESULTS.md, retrieval sweep)
    negatives: str = "mixed"  # in_batch | uniform | hard | mixed (see models/retrieval/model.py)
    num_sampled: int = 512  # sampled negatives per batch, on top of the batch's own movies
    num_hard_negatives: int = 128  # with negatives="hard": negatives kept per query, the highest-scored
    batch_size: int = 1024
    epochs: int = 9  # chosen on validation data, like early stopping on it (benchmarks/RESULTS.md)
    patience: int = 0  # 0: train all epochs; n: stop after n epochs without a lower eval loss
    learning_rate: float = 0.01
