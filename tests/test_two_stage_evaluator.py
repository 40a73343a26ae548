"""TwoStageEvaluator: the served order of retrieval's candidates, the rating RMSE, and its blessing rule."""
import numpy as np
import pytest
import tensorflow as tf

from components import two_stage_evaluator as TS


class Retrieval(tf.Module):
    """Every user gets m1, m2, m3 in that order; m3 has nothing left to offer (-inf)."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def serve(self, user_id):
        rows = tf.size(user_id)
        return {"movie_ids": tf.tile([[b"m1", b"m2", b"m3"]], [rows, 1]),
                "scores": tf.tile([[3.0, 2.0, float("-inf")]], [rows, 1])}


class Ranking(tf.Module):
    """Scores m2 above m1 and m3 above both."""

    def __init__(self):
        super().__init__()
        self.table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
            tf.constant(["m1", "m2", "m3"]), tf.constant([1.0, 2.0, 9.0])), 0.0)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string), tf.TensorSpec([None], tf.string)])
    def serve(self, user_id, movie_id):
        score = self.table.lookup(movie_id)
        return {"score": score, "rating": score / 2}  # ratings 0.5, 1.0, 4.5


def serving(module, path):
    """The serving signature of `module`, saved and loaded as the evaluator loads a model."""
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    return tf.saved_model.load(str(path)).signatures["serving_default"]


def test_ranks_only_what_retrieval_offers_in_the_ranking_order(tmp_path):
    index = {b"m1": 0, b"m2": 1}  # m3 is outside the catalogue too
    lists = TS.two_stage_lists(serving(Retrieval(), tmp_path / "r"), serving(Ranking(), tmp_path / "k"),
                               [b"u1", b"u2"], index)
    assert lists["retrieval"].tolist() == [[0, 1, -1], [0, 1, -1]]
    assert lists["ranking"].tolist() == [[1, 0, -1], [1, 0, -1]]  # m3 (-inf) never ranked up



def test_metrics_cut_at_the_lists_width_on_a_small_catalogue(tmp_path):
    result, cut = TS.two_stage_metrics(serving(Retrieval(), tmp_path / "r"), serving(Ranking(), tmp_path / "k"),
                                       [b"u1"], [{1}], {b"m1": 0, b"m2": 1})
    assert cut == 3  # lists of 3 movies: NDCG@3, not @10 or @100
    assert result["ranking"]["recall@3"] == result["retrieval"]["recall@3"] == 1.0
    assert result["ranking"]["ndcg@3"] == 1.0 > result["retrieval"]["ndcg@3"]  # m2 first, as ranked


def test_rmse_of_the_rating_output_over_batches(tmp_path):
    rank = serving(Ranking(), tmp_path / "k")
    users, movies = np.array([b"u1"] * 3, object), np.array([b"m1", b"m2", b"m3"], object)
    # predicted 0.5, 1.0, 4.5 against 1.5, 1.0, 2.5: errors -1, 0, 2 -> sqrt(5 / 3)
    assert TS.rmse(rank, users, movies, np.array([1.5, 1.0, 2.5]), batch=2) == pytest.approx(np.sqrt(5 / 3))


@pytest.mark.parametrize("ranked, alone, gain, rmse, baseline, blessed, limit", [
    (0.40, 0.36, 0.0, 0.95, None, True, 1.1),  # a better order, RMSE under the ceiling
    (0.35, 0.36, 0.0, 0.95, None, False, 1.1),  # a worse order
    (0.40, 0.36, 0.05, 0.95, None, False, 1.1),  # short of the needed gain
    (0.40, 0.36, 0.0, 1.15, None, False, 1.1),  # above the ceiling
    (0.40, 0.36, 0.0, 0.95, 0.93, False, 0.94),  # more than 0.01 above the last blessed model's
    (0.40, 0.36, 0.0, 0.94, 0.93, True, 0.94),  # within 0.01 of it
    (0.40, 0.36, 0.0, float("nan"), None, False, 1.1)])  # a diverged model
def test_blessing_needs_a_better_order_and_an_rmse_within_its_gates(ranked, alone, gain, rmse, baseline, blessed,
                                                                     limit):
    verdict, why = TS.bless(ranked, alone, gain, rmse, baseline, rmse_ceiling=1.1, max_rmse_increase=0.01)
    assert verdict == blessed
    assert f"two-stage NDCG {ranked:.4f}" in why and f"rating RMSE {rmse:.4f} against at most {limit:.4f}" in why
