"""ScaNN and brute-force retrievers over fake towers with embeddings chosen by hand."""
import subprocess
import sys

import numpy as np
import pytest
import scann  # noqa: F401
import tensorflow as tf

from components import examples, index_builder

USERS = {b"u1": [1.0, 0.0], b"u2": [0.0, 1.0], b"stranger": [0.5, 0.5], b"u3": [0.0, 0.0]}
MOVIES = {b"m1": [3.0, 0.0], b"m2": [2.0, 0.0], b"m3": [1.0, 0.0], b"m4": [0.0, 5.0]}
# ScaNN trains its quantiser on at least 16 points: pad with movies every user scores 0.
MOVIES.update({f"z{i:02d}".encode(): [0.0, 0.0] for i in range(16)})
SEEN = {b"u1": [b"m1", b"m4"], b"u2": [b"m2", b"m3"], b"u3": [b"z00"]}  # the movies each user rated in training


class FakeTowers(tf.Module):
    """embed_users/embed_movies with the signatures of models.retrieval.Towers."""

    def __init__(self):
        super().__init__()
        self.users = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
            tf.constant(list(USERS)), tf.range(len(USERS), dtype=tf.int64)), len(USERS))
        self.user_vectors = tf.constant(list(USERS.values()) + [[0.0, 0.0]])  # unknown ids: zeros
        self.movies = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
            tf.constant(list(MOVIES)), tf.range(len(MOVIES), dtype=tf.int64)), -1)
        self.movie_vectors = tf.constant(list(MOVIES.values()))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def embed_users(self, user_id):
        return {"embeddings": tf.gather(self.user_vectors, self.users.lookup(user_id))}

    @tf.function
    def embed_movies(self, movie_id, movie_title, movie_year, movie_genres, movie_tags):
        return {"embeddings": tf.gather(self.movie_vectors, self.movies.lookup(movie_id))}

    @tf.function
    def embed_request(self, user_id, history, user_age, user_gender, user_occupation, user_zip):
        """The user's vector plus the mean of the history's known movies' vectors."""
        index = self.movies.lookup(history)
        vectors = tf.gather(self.movie_vectors, tf.maximum(index, 0)) * tf.cast(index >= 0, tf.float32)[..., None]
        count = tf.maximum(tf.reduce_sum(tf.cast(index >= 0, tf.float32), axis=1, keepdims=True), 1.0)
        return {"embeddings": self.embed_users(user_id)["embeddings"] + tf.reduce_sum(vectors, axis=1) / count}


def dataset(columns):
    return tf.data.Dataset.from_tensor_slices(columns).batch(8)


def test_history_from_train_examples():
    train = dataset({"user_id": [b"u1", b"u1", b"u2"], "movie_id": [b"m2", b"m1", b"m2"]})
    assert examples.history(train) == {b"u1": [b"m1", b"m2"], b"u2": [b"m2"]}


def catalogue():
    titles = [b"One", b"Two", b"Three", b"Four"] + [b"Zero"] * 16
    return dataset({"movie_id": list(MOVIES), "movie_title": titles, "movie_year": [1990] * 20,
                    "movie_genres": [[b"Drama"]] * 20, "movie_tags": [[b""]] * 20})


@pytest.mark.parametrize("kind", ["scann", "bruteforce"])
def test_retriever_ranks_by_dot_product_and_excludes_rated_movies(kind, tmp_path):
    # u1 rated m1 and m4; u2 rated m2 and m3.
    retrievers = index_builder.build_retrievers(FakeTowers(), catalogue(), seen=SEEN,
                                                n=2, scann={})
    path = str(tmp_path / kind)
    retrievers[kind].save(path, scann=kind == "scann")
    signatures = tf.saved_model.load(path).signatures
    out = signatures["serving_default"](user_id=tf.constant(["u1", "u2", "stranger"]))
    # u1 scores m1 3, m2 2, m3 1, m4 0; u2 scores m4 5, the rest 0; the stranger is unknown.
    assert out["movie_ids"].numpy()[0].tolist() == [b"m2", b"m3"]
    np.testing.assert_allclose(out["scores"].numpy()[0], [2.0, 1.0], rtol=1e-5)
    assert out["titles"].numpy()[0].tolist() == [b"Two", b"Three"]
    assert out["movie_ids"].numpy()[1][0] == b"m4"
    assert out["known_user"].numpy().tolist() == [True, True, False]
    # An explicit exclusion and a smaller k.
    out = signatures["retrieve"](user_id=tf.constant(["u1"]), exclude=tf.constant([["m2", ""]]), k=tf.constant(1))
    assert out["movie_ids"].numpy().tolist() == [[b"m3"]]
    # Each of m1..m4 was rated once; ties go by id.
    popular = signatures["popular"](k=tf.constant(3))
    assert popular["movie_ids"].numpy().tolist() == [b"m1", b"m2", b"m3"]
    assert popular["titles"].numpy().tolist() == [b"One", b"Two", b"Three"]


def side(n):
    return {"user_age": tf.zeros([n], tf.int64), "user_gender": tf.fill([n], ""),
            "user_occupation": tf.fill([n], ""), "user_zip": tf.fill([n], "")}


@pytest.mark.parametrize("kind", ["scann", "bruteforce"])
def test_request_history_moves_the_query_and_is_excluded(kind, tmp_path):
    retrievers = index_builder.build_retrievers(FakeTowers(), catalogue(), seen=SEEN, n=3, scann={}, max_history=4)
    path = str(tmp_path / kind)
    retrievers[kind].save(path, scann=kind == "scann")
    retrieve = tf.saved_model.load(path).signatures["retrieve_history"]

    def ask(users, history, exclude=None, k=3):
        exclude = tf.zeros([len(users), 0], tf.string) if exclude is None else tf.constant(exclude)
        return retrieve(user_id=tf.constant(users), exclude=exclude, k=tf.constant(k),
                        history=tf.constant(history, tf.string), **side(len(users)))

    # "new" is an id never seen: its query is its history's m3 (1, 0), and m3 is excluded.
    # u2 (0, 1) with m1 (3, 0) asks (3, 1): m1 (request) and m2, m3 (training) are excluded.
    out = ask(["new", "u2", "u1"], [["m3", "", "", ""], ["m1", "", "", ""], ["", "", "", ""]])
    ids = out["movie_ids"].numpy().tolist()
    assert ids[0][:2] == [b"m1", b"m2"]  # query (1, 0) from m3: m1 3, m2 2 (m3 itself excluded)
    assert ids[1][0] == b"m4" and not {b"m1", b"m2", b"m3"} & set(ids[1])  # m4 scores 5, pads 0
    assert ids[2][:2] == [b"m2", b"m3"]  # an empty history: the same as `retrieve`
    assert out["known_user"].numpy().tolist() == [False, True, True]
    assert out["history_unknown"].numpy().tolist() == [0, 0, 0]
    # u3 (0, 0) with m4 in its history now faces up; unknown ids are ignored and counted.
    out = ask(["u3"], [["m4", "nope", "", "gone"]], exclude=[["m2"]], k=2)
    assert out["history_unknown"].numpy().tolist() == [2]
    assert b"m4" not in out["movie_ids"].numpy()[0] and b"m2" not in out["movie_ids"].numpy()[0]
    with pytest.raises(tf.errors.InvalidArgumentError, match="limit of 4"):
        ask(["new"], [["m1", "m2", "m3", "m4", "z01"]])


class ManyTowers(tf.Module):
    """Towers over movies "0".."n-1": movie i at angle i, every user at angle 0."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def embed_users(self, user_id):
        return {"embeddings": tf.tile([[1.0, 0.0]], [tf.size(user_id), 1])}

    @tf.function
    def embed_movies(self, movie_id, movie_title, movie_year, movie_genres, movie_tags):
        angle = tf.strings.to_number(movie_id) / 1000.0
        return {"embeddings": tf.stack([tf.cos(angle), tf.sin(angle)], axis=1)}


HEAVY = """
import resource, sys
import tensorflow as tf
retrieve = tf.saved_model.load(sys.argv[1]).signatures["retrieve"]
users, width = tf.constant(["heavy"] * 1000), int(sys.argv[2])
retrieve(user_id=users[:1], exclude=tf.zeros([1, 0], tf.string), k=tf.constant(100))  # warm up
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
out = retrieve(user_id=users, exclude=tf.fill([1000, width], "1999"), k=tf.constant(100))
ids = out["movie_ids"].numpy()
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024, ids[0, 0].decode(), len(set(ids[0])))
"""


def test_heaviest_request_costs_memory_linear_in_history(tmp_path):
    # 3,000 movies; one user saw 2,000 of them. The old pairwise drop needed a bool tensor of
    # [1000 rows, 2,200 candidates, 2,000 + exclusions]: over 4 GB for this request.
    ids = [str(i).encode() for i in range(3000)]
    movies = tf.data.Dataset.from_tensor_slices({"movie_id": ids, "movie_title": ids, "movie_year": [1990] * 3000,
                                                 "movie_genres": [[b"Drama"]] * 3000,
                                                 "movie_tags": [[b""]] * 3000}).batch(512)
    seen = {b"heavy": ids[:2000]}
    retriever = index_builder.build_retrievers(ManyTowers(), movies, seen, n=100, scann={})["bruteforce"]
    retriever.save(str(tmp_path / "model"), scann=False)
    for width in (1, 100):  # each row also excludes movie 1999 (seen) `width` times
        result = subprocess.run([sys.executable, "-c", HEAVY, str(tmp_path / "model"), str(width)],
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
        megabytes, best, distinct = result.stdout.split()
        assert int(megabytes) < 150, f"{megabytes} MB for 1000 rows of a 2,000-movie history"
        assert best == "2000" and distinct == "100"  # the nearest unseen movie first, 100 distinct


def test_scann_parameters_by_catalogue_size():
    # 1M movies, k=300: sqrt(n) leaves, a fifth searched, 500 reordered (benchmarks/index.py).
    assert index_builder.scann_parameters(1_000_000, 300) == {
        "num_leaves": 1000, "num_leaves_to_search": 200, "num_reordering_candidates": 500}
    # ML-100K, k=790: 41 leaves; 2 * 790 * 41 / 1682 = 38.5 -> 39 searched; k reordered.
    assert index_builder.scann_parameters(1682, 790) == {
        "num_leaves": 41, "num_leaves_to_search": 39, "num_reordering_candidates": 790}
    # 20 movies, k=20: every one of the 4 leaves is searched.
    assert index_builder.scann_parameters(20, 20)["num_leaves_to_search"] == 4
    # Given values win, within bounds: never more leaves searched than exist, nor fewer reordered than k.
    assert index_builder.scann_parameters(1682, 100, num_leaves=10, num_leaves_to_search=50,
                                          num_reordering_candidates=50) == {
        "num_leaves": 10, "num_leaves_to_search": 10, "num_reordering_candidates": 100}
