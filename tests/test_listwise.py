"""The listwise re-ranker: relation features, training lists and the listwise model, on hand-made data."""
import numpy as np
import pytest
import tensorflow as tf

from models.ranking import candidates
from models.ranking import model as M
from models.ranking import relations as R
from models.ranking.constants import RankingConfig

# Users 0 and 1 (row 2: the OOV user); movies 0..3 (row 4: the OOV movie).
USERS, MOVIES = np.array([0, 0, 1]), np.array([0, 1, 1])
EMBEDDINGS = np.array([[1, 0], [0, 1], [1, 1], [0, 0], [0, 0]], np.float32)
QUERIES = np.array([[1, 2], [0, 1], [0, 0]], np.float32)
GENRES = np.array([[1, 0], [0, 1], [1, 1], [0, 0], [0, 0]], np.float32)


def relations(lam=1.0, neighbours=3):
    return R.Relations(USERS, MOVIES, 3, 5, QUERIES, EMBEDDINGS, GENRES, lam, neighbours)


def features(rel, users, movies):
    out = rel(tf.constant(users, tf.int64), tf.constant(movies, tf.int64)).numpy()
    return [dict(zip(R.NAMES, row, strict=True)) for row in out]


def test_relation_features_by_hand():
    user0, user1, stranger = features(relations(), [0, 1, 2], [2, 2, 2])
    # User 0 saw movies 0 and 1; movie 2's embedding is (1, 1), its genres both (shares .5/.5).
    assert user0["retrieval"] == pytest.approx(3.0)  # (1, 2) . (1, 1)
    assert user0["similarity"] == pytest.approx(1.0)  # mean of (1, 0) . (1, 1) and (0, 1) . (1, 1)
    assert user0["genre"] == pytest.approx(0.5)  # history genre shares (.5, .5) . movie 2 shares (.5, .5)
    assert user0["popularity"] == 0.0  # nobody saw movie 2
    assert features(relations(), [0], [1])[0]["popularity"] == pytest.approx(np.log(3.0))  # two users saw movie 1
    assert user1["retrieval"] == pytest.approx(1.0) and user1["genre"] == pytest.approx(0.5)  # (0, 1) . (.5, .5)
    assert all(value == 0.0 for value in stranger.values())  # the OOV user knows nothing


def test_ease_weights_by_hand():
    # X = [[1, 1], [0, 1]] over movies (0, 1); EASE solves over movies by count: (1, 0).
    # G + I = [[3, 1], [1, 2]], P = [[2, -1], [-1, 3]] / 5, B[h, c] = -P[h, c] / P[c, c]:
    # B[movie 1 -> movie 0] = 1/3, B[movie 0 -> movie 1] = 1/2.
    rel = relations(lam=1.0)
    to_movie0, to_movie1 = features(rel, [1, 0], [0, 1])
    assert to_movie0["ease"] == pytest.approx(1 / 3, rel=1e-5)  # user 1 saw movie 1
    assert to_movie1["ease"] == pytest.approx(1 / 2, rel=1e-5)  # user 0 saw movie 0 (and 1 itself: B = 0)
    assert features(relations(neighbours=0), [1], [0])[0]["ease"] == 0.0  # no neighbours kept


def test_a_request_history_is_pooled_with_the_stored_one_once():
    # User 1 saw movie 1; the request adds movie 0 (twice, and movie 1 again: each counts once).
    # The stranger (row 2, no stored history) brings movie 0 alone. EASE as above: B[0 -> 1] = 1/2.
    history = tf.ragged.constant([[0, 1, 0], [0], [0]], dtype=tf.int64)
    queries = tf.constant([[2.0, 0.0]] * 3)
    out = relations()(tf.constant([1, 1, 2], tf.int64), tf.constant([0, 1, 1], tf.int64), history, queries).numpy()
    to_movie0, to_movie1, stranger = (dict(zip(R.NAMES, row, strict=True)) for row in out)
    assert to_movie0["retrieval"] == pytest.approx(2.0)  # the request's query (2, 0) . (1, 0)
    assert to_movie0["similarity"] == pytest.approx(0.5)  # mean of (1, 0) . (1, 0) and (0, 1) . (1, 0)
    assert to_movie0["genre"] == pytest.approx(0.5)  # history genres (.5, .5) . movie 0's (1, 0)
    assert to_movie0["ease"] == pytest.approx(1 / 3, rel=1e-5)  # B[1 -> 0] (stored) + B[0 -> 0] = 0
    assert to_movie1["ease"] == pytest.approx(1 / 2, rel=1e-5) and to_movie1["similarity"] == pytest.approx(0.5)
    assert stranger["ease"] == pytest.approx(1 / 2, rel=1e-5)  # from the request's movie 0 alone
    assert stranger["similarity"] == 0.0 and stranger["genre"] == 0.0 and stranger["retrieval"] == 0.0


def test_holdout_is_seeded_keeps_one_movie_and_holds_out_about_the_share():
    history = [np.arange(200), np.array([5]), np.array([], np.int64)]
    kept, held = candidates.holdout(history, 0.25, seed=3)
    again, _ = candidates.holdout(history, 0.25, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(kept, again, strict=True))
    assert sorted(np.concatenate([kept[0], held[0]])) == list(range(200))
    assert 30 < len(held[0]) < 70
    assert list(kept[1]) == [5] or list(held[1]) == []  # one movie stays in the history
    assert len(kept[2]) == len(held[2]) == 0


def test_top_candidates_mask_the_history():
    queries = np.array([[1.0, 0.0], [0.0, 1.0]])
    embeddings = np.array([[3.0, 0.0], [2.0, 1.0], [1.0, 2.0], [0.0, 3.0]])
    top = candidates.top_candidates(queries, embeddings, [np.array([0]), np.array([])], n=2)
    assert top.tolist() == [[1, 2], [3, 2]]


def test_listwise_ranker_learns_which_feature_finds_the_positive():
    rng = np.random.default_rng(0)
    lists, size = 200, 10
    features_ = rng.normal(size=(lists, size, 3)).astype(np.float32)
    labels = np.zeros((lists, size), np.float32)
    labels[np.arange(lists), features_[:, :, 1].argmax(axis=1)] = 1.0  # feature 1 finds it
    tf.keras.utils.set_random_seed(0)
    model, history = M.fit_listwise(features_, labels, RankingConfig(list_epochs=30, list_learning_rate=0.02))
    assert history["val_loss"][-1] < 0.6 * history["val_loss"][0]
    scores = model(tf.constant(features_)).numpy()
    assert (scores.argmax(axis=1) == labels.argmax(axis=1)).mean() > 0.8
    # Serving scores rows grouped by user: the same scores as the lists.
    flat = tf.reshape(tf.constant(features_[:3]), [-1, 3])
    groups = tf.repeat(tf.range(3), size)
    np.testing.assert_allclose(model.score(M.standardise_groups(flat, groups)).numpy().reshape(3, size),
                               scores[:3], rtol=1e-4, atol=1e-4)


def test_standardise_groups_by_hand():
    rows = tf.constant([[1.0, 5.0], [3.0, 5.0], [10.0, 0.0]])
    out = M.standardise_groups(rows, tf.constant([0, 0, 1])).numpy()
    np.testing.assert_allclose(out, [[-1.0, 0.0], [1.0, 0.0], [0.0, 0.0]], atol=1e-5)  # mean 2, std 1; constant


def test_the_history_mask_and_the_sorted_search_give_the_same_ease(monkeypatch):
    rng = np.random.default_rng(0)
    users, movies = rng.integers(0, 30, 600), rng.integers(0, 50, 600)
    rel = R.Relations(users, movies, 31, 51, rng.normal(size=[31, 4]), rng.normal(size=[51, 4]),
                      rng.integers(0, 2, [51, 3]).astype(np.float32), 1.0, 10)
    asked = tf.constant(rng.integers(0, 31, 300), tf.int64), tf.constant(rng.integers(0, 51, 300), tf.int64)
    masked = rel(*asked).numpy()
    monkeypatch.setattr(R, "MASK_CELLS", 0)  # every call takes the sorted searches
    searched = rel(*asked).numpy()
    np.testing.assert_allclose(masked, searched, rtol=1e-6, atol=1e-6)
    assert np.count_nonzero(masked[:, R.NAMES.index("ease")]) > 100  # the histories reach the neighbours
