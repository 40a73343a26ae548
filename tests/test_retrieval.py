"""The two-tower model: lookup tables, history without the target, negatives with logQ."""
import numpy as np
import pytest
import tensorflow as tf

from models import features as F
from models.retrieval.constants import RetrievalConfig
from models.retrieval.model import RetrievalModel, sampling_probability, tables
from models.retrieval.towers import (
    HISTORY,
    MOVIE_BAGS,
    SIDE,
    USER_SIDE,
    CandidateTower,
    MovieTable,
    QueryTower,
    RaggedTable,
    coin,
)

SIZES = {F.USER_ID: 4, F.MOVIE_ID: 5, F.USER_AGE: 3, F.USER_GENDER: 3, F.USER_OCCUPATION: 3, F.USER_ZIP: 3,
         F.MOVIE_YEAR: 3, F.MOVIE_GENRES: 4, F.MOVIE_TITLE: 6, F.MOVIE_TAGS: 2}
X = F.transformed_name


COLUMNS = {  # four transformed training examples, one column per feature
    F.USER_ID: [0, 1, 2, 0], F.MOVIE_ID: [0, 1, 2, 3], F.USER_AGE: [0, 1, 2, 0], F.USER_GENDER: [0, 1, 0, 0],
    F.USER_OCCUPATION: [1, 1, 2, 1], F.USER_ZIP: [0, 2, 1, 0], F.MOVIE_YEAR: [0, 1, 1, 2],
    F.MOVIE_GENRES: [[1], [0, 2], [1, 2], [3]], F.MOVIE_TITLE: [[0, 1], [2], [3, 4], [5]],
    F.MOVIE_TAGS: [[], [0], [], [1]]}
RATINGS = [5.0, 1.0, 3.0, 4.0]


def sparse(rows):
    return tf.RaggedTensor.from_row_lengths(tf.constant([v for r in rows for v in r], tf.int64),
                                            [len(r) for r in rows]).to_sparse()


BATCH = {X(key): sparse(v) if key in MOVIE_BAGS else tf.constant(v, tf.int64) for key, v in COLUMNS.items()}
BATCH[F.RATING] = tf.constant(RATINGS)


class FakeTransformOutput:
    """What F.dataset needs of a TFTransformOutput."""

    def transformed_feature_spec(self):
        spec = {X(key): tf.io.VarLenFeature(tf.int64) if key in MOVIE_BAGS else tf.io.FixedLenFeature([], tf.int64)
                for key in COLUMNS}
        spec[F.RATING] = tf.io.FixedLenFeature([], tf.float32)
        return spec


def write_batch(path):
    with tf.io.TFRecordWriter(str(path), options="GZIP") as writer:
        for i, rating in enumerate(RATINGS):
            feature = {X(key): tf.train.Feature(int64_list=tf.train.Int64List(
                value=values[i] if key in MOVIE_BAGS else [values[i]])) for key, values in COLUMNS.items()}
            feature[F.RATING] = tf.train.Feature(float_list=tf.train.FloatList(value=[rating]))
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())


def test_tables_hold_each_users_side_features_history_and_each_movies_features(tmp_path):
    write_batch(tmp_path / "train.gz")
    t = tables(FakeTransformOutput(), [str(tmp_path / "train.gz")], SIZES)
    assert t["side"].tolist() == [[0, 0, 1, 0], [1, 1, 1, 2], [2, 0, 2, 1], [0, 0, 0, 0]]  # user 3: unseen
    assert [sorted(h.tolist()) for h in t["history"]] == [[0, 3], [1], [2], []]  # in no promised order
    assert t["year"].tolist() == [0, 1, 1, 2, 0]
    assert [b.tolist() for b in t["bags"][F.MOVIE_GENRES]] == [[1], [0, 2], [1, 2], [3], []]
    assert [b.tolist() for b in t["bags"][F.MOVIE_TAGS]] == [[], [0], [], [1], []]
    assert t["counts"].tolist() == [1, 1, 1, 1, 0]


def query_tower(history):
    tf.keras.utils.set_random_seed(0)
    side = np.zeros([4, len(USER_SIDE)], np.int64)
    return QueryTower(side, [np.array(h, np.int64) for h in history], SIZES, dim=8, layers=[8])


def test_history_input_replaces_the_stored_history():
    tower = query_tower([[3, 0], [1], [2], []])
    user = {X(F.USER_ID): tf.constant([0], tf.int64)}
    only_3 = tower({**user, HISTORY: tf.ragged.constant([[3]], tf.int64)})
    tower.history = RaggedTable([np.array(h, np.int64) for h in [[3], [1], [2], []]], "history")
    np.testing.assert_allclose(only_3.numpy(), tower(user).numpy(), rtol=1e-6)
    assert only_3.shape == (1, 8)
    np.testing.assert_allclose(tf.norm(only_3, axis=1).numpy(), [1.0], rtol=1e-5)


def test_coin_is_fair_and_repeatable():
    movies = tf.range(10_000, dtype=tf.int64)
    flips = coin(tf.constant(7, tf.int64), movies, tf.constant(1, tf.int64)).numpy()
    assert 0.48 < (flips < 0.5).mean() < 0.52
    np.testing.assert_array_equal(flips, coin(tf.constant(7, tf.int64), movies, tf.constant(1, tf.int64)).numpy())
    assert (flips != coin(tf.constant(7, tf.int64), movies, tf.constant(2, tf.int64)).numpy()).any()


@pytest.mark.parametrize("negatives", ["in_batch", "uniform", "hard", "mixed"])
def test_every_negative_sampler_trains(negatives):
    query = query_tower([[0, 3], [1], [2], []])
    movies = MovieTable(np.array([0, 1, 1, 2, 0]),
                        {key: [np.array(r, np.int64) for r in COLUMNS[key] + [[]]] for key in MOVIE_BAGS})
    model = RetrievalModel(query, CandidateTower(SIZES, dim=8, layers=[8]), movies, np.array([1, 1, 1, 1, 0]),
                           RetrievalConfig(negatives=negatives, num_sampled=4, num_hard_negatives=2, temperature=0.1))
    model.compile(optimizer=tf.keras.optimizers.Adam(0.05))
    data = tf.data.Dataset.from_tensors(BATCH)
    before = model.evaluate(data, return_dict=True, verbose=0)["loss"]
    model.fit(data.repeat(40), verbose=0)
    assert model.evaluate(data, return_dict=True, verbose=0)["loss"] < 0.5 * before


def test_unknown_negative_sampler_is_refused():
    with pytest.raises(ValueError, match="negatives='random'"):
        RetrievalModel(query_tower([[], [], [], []]), CandidateTower(SIZES, 8, [8]), None, np.array([1, 1, 1, 1, 0]),
                       RetrievalConfig(negatives="random"))


@pytest.mark.parametrize("share", [0.2, 0.5])
def test_history_share_is_what_the_query_reads_and_the_rest_is_trained_on(share):
    query = query_tower([list(range(2_000)), [], [], []])  # user 0 rated 2,000 movies (ids past the table: fine here)
    model = RetrievalModel(query, CandidateTower(SIZES, 8, [8]), None, np.array([1, 1, 1, 1, 0]),
                           RetrievalConfig(negatives="in_batch", history_share=share))
    model.optimizer = tf.keras.optimizers.Adam()
    movies = tf.range(2_000, dtype=tf.int64)
    inputs, weights = model._history_coin({X(F.USER_ID): tf.zeros([2_000], tf.int64), X(F.MOVIE_ID): movies})
    keep = np.isin(np.arange(2_000), inputs[HISTORY][0].numpy())
    assert abs(keep.mean() - share) < 0.04
    np.testing.assert_array_equal(weights.numpy(), (~keep).astype(np.float32))  # a movie is input or target, never both
    with pytest.raises(ValueError, match="history_share=1.0"):
        RetrievalModel(query, CandidateTower(SIZES, 8, [8]), None, np.array([1, 1, 1, 1, 0]),
                       RetrievalConfig(history_share=1.0))


def test_anonymous_share_hides_whole_users_ids_but_keeps_their_history_and_side_features():
    users = 2_000  # user 1,999 is the unknown id (a new user's)
    side = np.arange(users * len(USER_SIDE), dtype=np.int64).reshape(users, len(USER_SIDE))
    query = QueryTower(side, [np.array([u % 5], np.int64) for u in range(users)], {**SIZES, F.USER_ID: users}, 8, [8])
    model = RetrievalModel(query, CandidateTower(SIZES, 8, [8]), None, np.array([1, 1, 1, 1, 0]),
                           RetrievalConfig(negatives="in_batch", history_share=0.99, anonymous_share=0.3))
    model.optimizer = tf.keras.optimizers.Adam()
    user = tf.tile(tf.range(users - 1, dtype=tf.int64), [2])  # each user twice
    inputs, _ = model._history_coin({X(F.USER_ID): user, X(F.MOVIE_ID): tf.zeros_like(user)})
    hidden = (inputs[X(F.USER_ID)].numpy() == users - 1).reshape(2, -1)
    np.testing.assert_array_equal(hidden[0], hidden[1])  # a user is hidden in all their examples or none
    assert 0.26 < hidden[0].mean() < 0.34
    np.testing.assert_array_equal(inputs[X(F.USER_ID)].numpy()[~hidden.ravel()], user.numpy()[~hidden.ravel()])
    np.testing.assert_array_equal(inputs[SIDE].numpy(), side[user.numpy()])  # the hidden user's own side features
    with pytest.raises(ValueError, match="anonymous_share=1.0"):
        RetrievalModel(query, CandidateTower(SIZES, 8, [8]), None, np.array([1, 1, 1, 1, 0]),
                       RetrievalConfig(anonymous_share=1.0))


def test_sampling_probability_mixes_positives_and_both_samplers():
    popularity = tf.constant([0.5, 0.25, 0.25, 0.0])
    uniform = tf.constant([1 / 3, 1 / 3, 1 / 3, 0.0])
    # 2 positives + 1 popular draw follow popularity, 1 uniform draw: weights 3/4 and 1/4.
    q = sampling_probability(tf.constant([0, 2]), popularity, uniform, batch=2, n_popular=1, n_uniform=1)
    # movie 0: (3 * 0.5 + 1/3) / 4 = 0.458333; movie 2: (3 * 0.25 + 1/3) / 4 = 0.270833
    np.testing.assert_allclose(q.numpy(), [0.458333, 0.270833], rtol=1e-5)
    # in_batch: positives only, so popularity alone.
    np.testing.assert_allclose(sampling_probability(tf.constant([1]), popularity, uniform, 5, 0, 0).numpy(), [0.25])


def test_a_new_user_given_five_movies_of_one_genre_gets_that_genre():
    # 40 users each watch 8 of the 12 movies of one genre (users 0-19: genre 0, movies 0-11;
    # users 20-39: genre 1, movies 12-23). A user the model never saw (row 40) gives five
    # genre-0 movies at request time: the query pools them (HISTORY), as embed_request does.
    rng = np.random.default_rng(0)
    genre = np.repeat([0, 1], 12)
    history = [rng.choice(np.flatnonzero(genre == user // 20), 8, replace=False) for user in range(40)] + [[]]
    sizes = {**SIZES, F.USER_ID: 41, F.MOVIE_ID: 24, F.MOVIE_GENRES: 2}
    bags = {F.MOVIE_GENRES: [np.array([g], np.int64) for g in genre], F.MOVIE_TITLE: [np.zeros([0], np.int64)] * 24,
            F.MOVIE_TAGS: [np.zeros([0], np.int64)] * 24}
    movies = MovieTable(np.zeros(24, np.int64), bags)
    tf.keras.utils.set_random_seed(0)
    query = QueryTower(np.zeros([41, len(USER_SIDE)], np.int64), [np.array(h, np.int64) for h in history],
                       sizes, dim=16, layers=[16])
    model = RetrievalModel(query, CandidateTower(sizes, dim=16, layers=[16]), movies, np.full(24, 13),
                           RetrievalConfig(negatives="in_batch", temperature=0.1))
    model.compile(optimizer=tf.keras.optimizers.Adam(0.02))
    users = np.repeat(np.arange(40), 8)
    pairs = {X(F.USER_ID): users, **movies.gather(tf.constant(np.concatenate(history[:40]), tf.int64))}
    model.fit(tf.data.Dataset.from_tensor_slices(pairs).shuffle(320, seed=0).batch(32).repeat(40), verbose=0)

    given = np.flatnonzero(genre == 0)[:5]
    new = query({X(F.USER_ID): tf.constant([40], tf.int64),
                 HISTORY: tf.ragged.constant([given.tolist()], tf.int64)}).numpy()[0]
    scores = model.candidate(movies.gather(tf.range(24, dtype=tf.int64))).numpy() @ new
    scores[given] = -np.inf  # the signatures exclude the request's history (test_index_builder.py)
    top = np.argsort(-scores)[:5]
    assert (genre[top] == 0).sum() >= 4, (top, genre[top])
