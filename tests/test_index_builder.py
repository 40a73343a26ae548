"""ScaNN and brute-force retrievers over fake towers with embeddings chosen by hand."""
import numpy as np
import pytest
import scann  # noqa: F401
import tensorflow as tf

from components import index_builder

USERS = {b"u1": [1.0, 0.0], b"u2": [0.0, 1.0], b"stranger": [0.5, 0.5]}
MOVIES = {b"m1": [3.0, 0.0], b"m2": [2.0, 0.0], b"m3": [1.0, 0.0], b"m4": [0.0, 5.0]}
# ScaNN trains its quantiser on at least 16 points: pad with movies every user scores 0.
MOVIES.update({f"z{i:02d}".encode(): [0.0, 0.0] for i in range(16)})


class FakeTowers(tf.Module):
    """embed_users/embed_movies with the signatures of models.retrieval.Towers."""

    def __init__(self):
        super().__init__()
        self.users = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
            tf.constant(list(USERS)), tf.range(len(USERS), dtype=tf.int64)), -1)
        self.user_vectors = tf.constant(list(USERS.values()))
        self.movies = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
            tf.constant(list(MOVIES)), tf.range(len(MOVIES), dtype=tf.int64)), -1)
        self.movie_vectors = tf.constant(list(MOVIES.values()))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def embed_users(self, user_id):
        return {"embeddings": tf.gather(self.user_vectors, self.users.lookup(user_id))}

    @tf.function
    def embed_movies(self, movie_id, movie_title, movie_year, movie_genres, movie_tags):
        return {"embeddings": tf.gather(self.movie_vectors, self.movies.lookup(movie_id))}


def dataset(columns):
    return tf.data.Dataset.from_tensor_slices(columns).batch(8)


def test_history_from_train_examples():
    train = dataset({"user_id": [b"u1", b"u1", b"u2"], "movie_id": [b"m2", b"m1", b"m2"]})
    assert index_builder.history(train) == {b"u1": b"m1|m2", b"u2": b"m2"}


def catalogue():
    titles = [b"One", b"Two", b"Three", b"Four"] + [b"Zero"] * 16
    return dataset({"movie_id": list(MOVIES), "movie_title": titles, "movie_year": [1990] * 20,
                    "movie_genres": [[b"Drama"]] * 20, "movie_tags": [[b""]] * 20})


@pytest.mark.parametrize("kind", ["scann", "bruteforce"])
def test_retriever_ranks_by_dot_product_and_excludes_rated_movies(kind, tmp_path):
    # u1 rated m1 and m4; u2 rated m2 and m3.
    retrievers = index_builder.build_retrievers(FakeTowers(), catalogue(), seen={b"u1": b"m1|m4", b"u2": b"m2|m3"},
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
