"""Deep & Cross Network (DCN-v2) ranking model with a rating head and a "liked" head.

Every transformed feature is embedded (multi-valued ones averaged); the concatenation goes
through `tfrs.layers.dcn.Cross` layers stacked before or parallel to the deep network (none:
a plain deep network), and two heads read it: the rating (MSE, with user and movie biases
and the training mean) and the like logit (rating >= 4, binary cross-entropy).
"""
from typing import Dict, Iterable, List, Optional, Tuple

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs
import tensorflow_transform as tft

from models import features as F
from models import training
from models.ranking.constants import RankingConfig


class RankingModel(tfrs.Model):
    """Embeddings -> DCN-v2 (or a plain deep network) -> rating and like logit.

    Args:
      cardinalities: {transformed feature name: number of ids}, e.g. {"user_id_xf": 944}.
      config: embedding_dim, deep_layers, cross_layers, structure, projection_dim, the two
        losses' weights, l2 and negative_weight (see RankingConfig).
      rating_bias: initial global bias of the rating head (the training mean).
    """

    def __init__(self, cardinalities: Dict[str, int], config: RankingConfig, rating_bias: float = 0.0):
        super().__init__()
        if config.structure not in ("stacked", "parallel"):
            raise ValueError(f"ranking config structure={config.structure!r}: use 'stacked' or 'parallel'")
        reg = tf.keras.regularizers.l2(config.l2) if config.l2 else None
        self.cardinalities = dict(cardinalities)
        self.embeddings = {name: tf.keras.layers.Embedding(n, config.embedding_dim, embeddings_regularizer=reg)
                           for name, n in self.cardinalities.items()}
        for layer in self.embeddings.values():
            layer.build((None,))  # multi-valued features read the table directly
        self.biases = {name: tf.keras.layers.Embedding(self.cardinalities[name], 1, embeddings_initializer="zeros")
                       for name in (F.transformed_name(F.USER_ID), F.transformed_name(F.MOVIE_ID))
                       if name in self.cardinalities}
        self.structure = config.structure
        self.crosses = [tfrs.layers.dcn.Cross(projection_dim=config.projection_dim, kernel_initializer="glorot_uniform")
                        for _ in range(config.cross_layers)]
        self.deep = tf.keras.Sequential([tf.keras.layers.Dense(n, activation="relu") for n in config.deep_layers])
        self.rating_head = tf.keras.layers.Dense(1, bias_initializer=tf.keras.initializers.Constant(rating_bias))
        self.like_head = tf.keras.layers.Dense(1)
        self.weights_ = (config.rating_weight, config.liked_weight)
        self.negative_weight = config.negative_weight
        self.rating_task = tfrs.tasks.Ranking(loss=tf.keras.losses.MeanSquaredError(),
                                              metrics=[tf.keras.metrics.RootMeanSquaredError("rmse")])
        self.like_task = tfrs.tasks.Ranking(loss=tf.keras.losses.BinaryCrossentropy(from_logits=True),
                                            metrics=[tf.keras.metrics.AUC(from_logits=True, name="auc")])

    def _embed(self, name: str, ids) -> tf.Tensor:
        """int64 ids [B] or SparseTensor [B, None] -> float32 [B, dim] (mean of a row's ids)."""
        top = self.cardinalities[name] - 1
        if isinstance(ids, tf.SparseTensor):  # an empty row embeds to zeros
            ids = tf.SparseTensor(ids.indices, tf.clip_by_value(ids.values, 0, top), ids.dense_shape)
            return tf.nn.safe_embedding_lookup_sparse(self.embeddings[name].embeddings, ids, combiner="mean")
        return self.embeddings[name](tf.clip_by_value(tf.reshape(ids, [-1]), 0, top))

    def embed(self, inputs: Dict[str, tf.Tensor], names: Optional[List[str]] = None) -> tf.Tensor:
        """The embeddings of `names` (default: every feature, sorted), concatenated: float32 [B, len(names) * dim]."""
        return tf.concat([self._embed(name, inputs[name]) for name in names or sorted(self.cardinalities)], axis=1)

    def call(self, inputs: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
        """Transformed features -> {"rating": float32 [B], "like_logit": float32 [B]}."""
        return self.head(self.embed(inputs), inputs)

    def head(self, x0: tf.Tensor, ids: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
        """`embed`'s float32 [B, features * dim] and the user and movie id features int64 [B] (their biases)
        -> {"rating": float32 [B], "like_logit": float32 [B]}."""
        x = x0
        for cross in self.crosses:
            x = cross(x0, x)
        if self.crosses and self.structure == "parallel":
            x = tf.concat([x, self.deep(x0)], axis=1)
        else:
            x = self.deep(x)
        rating = self.rating_head(x)[:, 0]
        for name, bias in self.biases.items():
            rating += bias(tf.clip_by_value(ids[name], 0, self.cardinalities[name] - 1))[:, 0]
        return {"rating": rating, "like_logit": self.like_head(x)[:, 0]}

    def compute_loss(self, inputs: Dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        out = self(inputs, training=training)
        rating = inputs[F.RATING]
        liked = inputs[F.LIKED] if F.LIKED in inputs else F.liked(rating)
        rating_weight, liked_weight = self.weights_
        loss = (rating_weight * self.rating_task(labels=rating, predictions=out["rating"])
                + liked_weight * self.like_task(labels=liked, predictions=out["like_logit"]))
        if training and self.negative_weight:  # each user paired with another row's movie: not liked
            order = tf.random.shuffle(tf.range(tf.shape(rating)[0]))
            others = {name: _gather(value, order) if name.startswith("movie_") else value
                      for name, value in inputs.items() if name in self.cardinalities}
            loss += self.negative_weight * self.like_task(labels=tf.zeros_like(rating),
                                                          predictions=self(others, training=True)["like_logit"])
        return loss


def _gather(values, order):
    """Rows `order` of a [B] tensor or of an id SparseTensor [B, None] (ids >= 0)."""
    if isinstance(values, tf.SparseTensor):
        rows = tf.gather(tf.sparse.to_dense(values, default_value=-1), order)
        where = tf.where(rows >= 0)
        return tf.SparseTensor(where, tf.gather_nd(rows, where), tf.shape(rows, out_type=tf.int64))
    return tf.gather(values, order)


def feature_names(tft_output: tft.TFTransformOutput, config: RankingConfig) -> list:
    """The transformed features the model reads: the configured ones Transform produces."""
    spec = tft_output.transformed_feature_spec()
    wanted = list(config.user_features) + list(config.movie_features)
    return [F.transformed_name(key) for key in wanted if F.transformed_name(key) in spec]


def build(tft_output: tft.TFTransformOutput, config: RankingConfig, rating_bias: float = 0.0) -> RankingModel:
    """A compiled RankingModel over the configured features."""
    cardinalities = {}
    for name in feature_names(tft_output, config):
        try:
            cardinalities[name] = tft_output.num_buckets_for_transformed_feature(name)
        except ValueError as error:
            raise ValueError(f"Ranking feature {name}: Transform records no number of ids for it ({error}); "
                             "produce it with a tft vocabulary or bucketize, or drop it from "
                             "user_features/movie_features in the ranking config") from None
    model = RankingModel(cardinalities, config, rating_bias)
    model.compile(optimizer=tf.keras.optimizers.Adam(config.learning_rate))
    return model


def mean_rating(file_patterns: list, tft_output: tft.TFTransformOutput) -> float:
    """The mean label of the transformed examples (the rating head's starting bias)."""
    total, count = F.dataset(file_patterns, tft_output, 4096, shuffle=False).reduce(
        (0.0, 0.0), lambda acc, b: (acc[0] + tf.reduce_sum(b[F.RATING]), acc[1] + tf.cast(tf.size(b[F.RATING]),
                                                                                         tf.float32)))
    return float(total / tf.maximum(count, 1.0))


def early_stopping(config: RankingConfig) -> list:
    """Keras callbacks stopping on the eval RMSE and keeping the best epoch's weights (none at patience 0)."""
    stop = tf.keras.callbacks.EarlyStopping("val_rmse", patience=config.patience, restore_best_weights=True)
    return [stop] if config.patience else []


class ListwiseRanker(tfrs.Model):
    """A DCN-v2 over each candidate's relation features, trained listwise.

    Each feature is standardised within the user's list (raw levels shift between training
    lists, built from part of each history, and serving, which sees all of it), crossed by
    `tfrs.layers.dcn.Cross` layers (none by default: a weighted sum) and scored by a deep
    network; the loss is each list's softmax cross-entropy against its labels (normalised
    to sum to 1).

    Args:
      cross_layers, deep_layers: the DCN's Cross layers and ReLU widths.
    """

    def __init__(self, cross_layers: int = RankingConfig.list_cross_layers,
                 deep_layers: Iterable[int] = RankingConfig.list_deep_layers):
        super().__init__()
        self.crosses = [tfrs.layers.dcn.Cross(kernel_initializer="glorot_uniform") for _ in range(cross_layers)]
        self.deep = tf.keras.Sequential([tf.keras.layers.Dense(n, activation="relu") for n in deep_layers]
                                        + [tf.keras.layers.Dense(1)])
        self.task = tfrs.tasks.Ranking(loss=tf.keras.losses.CategoricalCrossentropy(from_logits=True))

    def score(self, standardised: tf.Tensor) -> tf.Tensor:
        """float32 [M, F] features standardised within their lists -> scores float32 [M]."""
        x = standardised
        for cross in self.crosses:
            x = cross(standardised, x)
        return self.deep(x)[:, 0]

    def call(self, features: tf.Tensor) -> tf.Tensor:
        """float32 [B, N, F] lists of N candidates -> scores float32 [B, N]."""
        mean, variance = tf.nn.moments(features, axes=[1], keepdims=True)
        standardised = (features - mean) / (tf.sqrt(variance) + STD_EPSILON)
        return tf.reshape(self.score(tf.reshape(standardised, [-1, features.shape[-1]])), tf.shape(features)[:2])

    def compute_loss(self, inputs: Tuple[tf.Tensor, tf.Tensor], training: bool = False) -> tf.Tensor:
        features, labels = inputs  # [B, N, F], [B, N] with at least one positive per list
        return self.task(labels=labels / tf.reduce_sum(labels, axis=1, keepdims=True),
                         predictions=self(features, training=training))


STD_EPSILON = 1e-6


def standardise_groups(features: tf.Tensor, groups: tf.Tensor) -> tf.Tensor:
    """Rows [B, F] standardised within their group (e.g. the rows of one user in a request),
    as ListwiseRanker.call does within a list; groups int [B] in [0, number of groups)."""
    count = tf.reduce_max(groups) + 1
    mean = tf.math.unsorted_segment_mean(features, groups, count)
    variance = tf.maximum(tf.math.unsorted_segment_mean(tf.square(features), groups, count) - tf.square(mean), 0.0)
    return (features - tf.gather(mean, groups)) / (tf.sqrt(tf.gather(variance, groups)) + STD_EPSILON)


def fit_listwise(features: np.ndarray, labels: np.ndarray, config: RankingConfig
                 ) -> Tuple[ListwiseRanker, dict]:
    """Trains a ListwiseRanker on [L, N, F] lists, early stopping on a tenth of them.

    Returns:
      The model (best epoch's weights) and the Keras history.
    """
    if len(features) < 2:
        raise ValueError(f"{len(features)} training lists: too few users have a held-out movie among their "
                         "candidates; raise the ranking config's holdout or num_candidates, or add data")
    order = np.random.default_rng(0).permutation(len(features))
    cut = max(1, len(order) // 10)
    model = ListwiseRanker(config.list_cross_layers, config.list_deep_layers)
    model.compile(optimizer=tf.keras.optimizers.Adam(config.list_learning_rate))
    stop = tf.keras.callbacks.EarlyStopping("val_loss", patience=config.list_patience, restore_best_weights=True)

    def lists(rows: np.ndarray) -> tf.data.Dataset:
        return tf.data.Dataset.from_tensor_slices((features[rows], labels[rows]))

    line = training.EpochLine(config.list_epochs, {"loss": len(order) - cut, "val_loss": cut}, config.list_batch_size,
                              summed=False, show=bool(config.verbose))
    history = model.fit(lists(order[cut:]).shuffle(len(order), seed=0).batch(config.list_batch_size),
                        validation_data=lists(order[:cut]).batch(config.list_batch_size), epochs=config.list_epochs,
                        callbacks=[line, stop], verbose=0)
    return model, history.history
