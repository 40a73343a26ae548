"""The two-tower model: lookup tables, history without the target, negatives with logQ."""
import numpy as np
import pytest
import tensorflow as tf

from models import features as F
from models.retrieval.model import RetrievalModel, tables
from models.retrieval.towers import MOVIE_BAGS, USER_SIDE, CandidateTower, MovieTable, QueryTower, RaggedTable

SIZES = {F.USER_ID: 4, F.MOVIE_ID: 5, F.USER_AGE: 3, F.USER_GENDER: 3, F.USER_OCCUPATION: 3, F.USER_ZIP: 3,
         F.MOVIE_YEAR: 3, F.MOVIE_GENRES: 4, F.MOVIE_TITLE: 6, F.MOVIE_TAGS: 2}
X = F.transformed_name


COLUMNS = {  # four transformed training examples, one column per feature
    F.USER_ID: [0, 1, 2, 0], F.MOVIE_ID: [0, 1, 2, 3], F.USER_AGE: [0, 1, 2, 0], F.USER_GENDER: [0, 1, 0, 0],
    F.USER_OCCUPATION: [1, 1, 2, 1], F.USER_ZIP: [0, 2, 1, 0], F.MOVIE_YEAR: [0, 1, 1, 2],
    F.MOVIE_GENRES: [[1], [0, 2], [1, 2], [3]], F.MOVIE_TITLE: [[0, 1], [2], [3, 4], [5]],
    F.MOVIE_TAGS: [[], [0], [], [1]]}
RATINGS = [5.0, 1.0, 3.0, 4.0]
TIMES = [0.5, 0.25, 0.75, -1.0]  # timestamp_xf (z-scores), exact in float32


def sparse(rows):
    return tf.RaggedTensor.from_row_lengths(tf.constant([v for r in rows for v in r], tf.int64),
                                            [len(r) for r in rows]).to_sparse()


BATCH = {X(key): sparse(v) if key in MOVIE_BAGS else tf.constant(v, tf.int64) for key, v in COLUMNS.items()}
BATCH[F.RATING] = tf.constant(RATINGS)
BATCH[X(F.TIMESTAMP)] = tf.constant(TIMES)


class FakeTransformOutput:
    """What F.dataset needs of a TFTransformOutput."""

    def transformed_feature_spec(self):
        spec = {X(key): tf.io.VarLenFeature(tf.int64) if key in MOVIE_BAGS else tf.io.FixedLenFeature([], tf.int64)
                for key in COLUMNS}
        spec[F.RATING] = spec[X(F.TIMESTAMP)] = tf.io.FixedLenFeature([], tf.float32)
        return spec


def write_batch(path):
    with tf.io.TFRecordWriter(str(path), options="GZIP") as writer:
        for i, (rating, time) in enumerate(zip(RATINGS, TIMES)):
            feature = {X(key): tf.train.Feature(int64_list=tf.train.Int64List(
                value=values[i] if key in MOVIE_BAGS else [values[i]])) for key, values in COLUMNS.items()}
            feature[F.RATING] = tf.train.Feature(float_list=tf.train.FloatList(value=[rating]))
            feature[X(F.TIMESTAMP)] = tf.train.Feature(float_list=tf.train.FloatList(value=[time]))
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())


def test_tables_hold_each_users_side_features_history_and_each_movies_features(tmp_path):
    write_batch(tmp_path / "train.gz")
    t = tables(FakeTransformOutput(), [str(tmp_path / "train.gz")], SIZES)
    assert t["side"].tolist() == [[0, 0, 1, 0], [1, 1, 1, 2], [2, 0, 2, 1], [0, 0, 0, 0]]  # user 3: unseen
    assert [h.tolist() for h in t["history"]] == [[3, 0], [1], [2], []]  # in time order
    assert [h.tolist() for h in t["history_times"]] == [[-1.0, 0.5], [0.25], [0.75], []]
    assert t["year"].tolist() == [0, 1, 1, 2, 0]
    assert [b.tolist() for b in t["bags"][F.MOVIE_GENRES]] == [[1], [0, 2], [1, 2], [3], []]
    assert [b.tolist() for b in t["bags"][F.MOVIE_TAGS]] == [[], [0], [], [1], []]
    assert t["counts"].tolist() == [1, 1, 1, 1, 0]


def query_tower(history, times):
    tf.keras.utils.set_random_seed(0)
    side = np.zeros([4, len(USER_SIDE)], np.int64)
    return QueryTower(side, [np.array(h, np.int64) for h in history], [np.array(t, np.float32) for t in times],
                      SIZES, dim=8, layers=[8])


def test_training_history_holds_only_movies_rated_before_the_example():
    tower = query_tower([[3, 0], [1], [2], []], [[-1.0, 0.5], [0.25], [0.75], []])
    at_movie_0 = tower({X(F.USER_ID): tf.constant([0], tf.int64), X(F.TIMESTAMP): tf.constant([0.5])})
    tower.history = RaggedTable([np.array(h, np.int64) for h in [[3], [1], [2], []]], "history")
    served_with_movie_3_only = tower({X(F.USER_ID): tf.constant([0], tf.int64)})  # serving: whole history
    np.testing.assert_allclose(at_movie_0.numpy(), served_with_movie_3_only.numpy(), rtol=1e-6)
    assert at_movie_0.shape == (1, 8)
    np.testing.assert_allclose(tf.norm(at_movie_0, axis=1).numpy(), [1.0], rtol=1e-5)


@pytest.mark.parametrize("negatives", ["in_batch", "uniform", "hard", "mixed"])
def test_every_negative_sampler_trains(negatives):
    query = query_tower([[3, 0], [1], [2], []], [[-1.0, 0.5], [0.25], [0.75], []])
    movies = MovieTable(np.array([0, 1, 1, 2, 0]),
                        {key: [np.array(r, np.int64) for r in COLUMNS[key] + [[]]] for key in MOVIE_BAGS})
    model = RetrievalModel(query, CandidateTower(SIZES, dim=8, layers=[8]), movies, np.array([1, 1, 1, 1, 0]),
                           {"negatives": negatives, "num_sampled": 4, "num_hard_negatives": 2, "temperature": 0.1})
    model.compile(optimizer=tf.keras.optimizers.Adam(0.05))
    data = tf.data.Dataset.from_tensors(BATCH)
    before = model.evaluate(data, return_dict=True, verbose=0)["loss"]
    model.fit(data.repeat(40), verbose=0)
    assert model.evaluate(data, return_dict=True, verbose=0)["loss"] < 0.5 * before


def test_unknown_negative_sampler_is_refused():
    with pytest.raises(ValueError, match="negatives='random'"):
        RetrievalModel(query_tower([[], [], [], []], [[], [], [], []]), CandidateTower(SIZES, 8, [8]), None, np.array([1, 1, 1, 1, 0]),
                       {"negatives": "random"})
