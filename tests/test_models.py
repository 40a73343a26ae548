"""A few training steps of each model on a tiny fixed batch: the loss must fall."""
import tensorflow as tf

from models import features as F
from models.ranking.model import RankingModel

BATCH = {
    F.transformed_name(F.USER_ID): tf.constant([0, 1, 2, 3], tf.int64),
    F.transformed_name(F.MOVIE_ID): tf.constant([0, 1, 2, 3], tf.int64),
    F.transformed_name(F.MOVIE_YEAR): tf.constant([0, 1, 1, 2], tf.int64),
    F.transformed_name(F.MOVIE_GENRES): tf.sparse.from_dense(tf.constant([[1, 0], [0, 2], [1, 2], [2, 0]], tf.int64)),
    F.RATING: tf.constant([5.0, 1.0, 3.0, 4.0]),
}


def loss_before_and_after(model, optimizer, steps=30):
    model.compile(optimizer=optimizer)
    data = tf.data.Dataset.from_tensors(BATCH)
    before = model.evaluate(data, return_dict=True, verbose=0)["loss"]
    model.fit(data.repeat(steps), verbose=0)
    return before, model.evaluate(data, return_dict=True, verbose=0)["loss"]


def test_ranking_model_fits_ratings():
    tf.keras.utils.set_random_seed(0)
    cardinalities = {F.transformed_name(k): n for k, n in
                     ((F.USER_ID, 5), (F.MOVIE_ID, 5), (F.MOVIE_YEAR, 3), (F.MOVIE_GENRES, 3))}
    model = RankingModel(cardinalities, dim=8, deep_layers=(16,))
    before, after = loss_before_and_after(model, tf.keras.optimizers.Adam(0.05))
    assert after < 0.2 * before
    assert model(BATCH)["rating"].shape == (4,) and model(BATCH)["like_logit"].shape == (4,)
