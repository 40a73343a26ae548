"""TwoStageEvaluator: the served order of retrieval's candidates, and its blessing rule."""
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
        return {"score": self.table.lookup(movie_id)}


def save(module, path):
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    return str(path)


def test_ranks_only_what_retrieval_offers_in_the_ranking_order(tmp_path):
    index = {b"m1": 0, b"m2": 1}  # m3 is outside the catalogue too
    lists = TS.two_stage_lists(save(Retrieval(), tmp_path / "r"), save(Ranking(), tmp_path / "k"),
                               [b"u1", b"u2"], index)
    assert lists["retrieval"].tolist() == [[0, 1, -1], [0, 1, -1]]
    assert lists["ranking"].tolist() == [[1, 0, -1], [1, 0, -1]]  # m3 (-inf) never ranked up



def test_metrics_cut_at_the_lists_width_on_a_small_catalogue(tmp_path):
    result, cut = TS.two_stage_metrics(save(Retrieval(), tmp_path / "r"), save(Ranking(), tmp_path / "k"),
                                       [b"u1"], [{1}], {b"m1": 0, b"m2": 1})
    assert cut == 3  # lists of 3 movies: NDCG@3, not @10 or @100
    assert result["ranking"]["recall@3"] == result["retrieval"]["recall@3"] == 1.0
    assert result["ranking"]["ndcg@3"] == 1.0 > result["retrieval"]["ndcg@3"]  # m2 first, as ranked


@pytest.mark.parametrize("ranked, alone, ratings, gain, blessed", [
    (0.40, 0.36, True, 0.0, True), (0.35, 0.36, True, 0.0, False), (0.40, 0.36, False, 0.0, False),
    (0.40, 0.36, True, 0.05, False)])
def test_blessing_needs_a_better_order_and_blessed_ratings(ranked, alone, ratings, gain, blessed):
    verdict, why = TS.bless(ranked, alone, ratings, gain)
    assert verdict == blessed
    assert f"{ranked:.4f}" in why and ("NOT blessed" in why) != ratings
