"""ScaNN and brute-force retrievers over fake towers with embeddings chosen by hand."""
import numpy as np
import pytest
import scann  # noqa: F401
import tensorflow as tf

from components import index_builder

USERS = {b"u1": [1.0, 0.0], b"u2": [0.0, 1.0]}
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
    def embed_movies(self, movie_id, movie_genres, movie_year):
        return {"embeddings": tf.gather(self.movie_vectors, self.movies.lookup(movie_id))}


def test_catalogue_and_history_from_examples():
    train = {"user_id": np.array([b"u1", b"u1", b"u2"], dtype=object),
             "movie_id": np.array([b"m2", b"m1", b"m2"], dtype=object),
             "movie_title": np.array([b"Two", b"One", b"Two"], dtype=object),
             "movie_year": np.array([1990, 1980, 1990]),
             "movie_genres": np.array([[b"Drama", b""], [b"Comedy", b"Drama"], [b"Drama", b""]], dtype=object)}
    ids, titles, genres, years = index_builder.catalogue([train])
    assert list(ids) == [b"m1", b"m2"] and list(titles) == [b"One", b"Two"]
    assert genres.tolist() == [[b"Comedy", b"Drama"], [b"Drama", b""]] and list(years) == [1980, 1990]
    assert index_builder.history(train) == {b"u1": b"m1|m2", b"u2": b"m2"}


@pytest.mark.parametrize("kind", ["scann", "bruteforce"])
def test_retriever_ranks_by_dot_product_and_excludes_rated_movies(kind, tmp_path):
    ids = np.array(list(MOVIES), dtype=object)
    titles = np.array([b"One", b"Two", b"Three", b"Four"] + [b"Zero"] * 16, dtype=object)
    retrievers = index_builder.build_retrievers(
        FakeTowers(), ids, titles, np.array([[b""]] * 20, dtype=object), np.zeros(20, np.int64),
        seen={b"u1": b"m1"}, n=2, scann={})
    path = str(tmp_path / kind)
    retriever = retrievers[kind]
    tf.saved_model.save(retriever, path, signatures={"serving_default": retriever.serve},
                        options=index_builder.SCANN_OPTIONS)
    out = tf.saved_model.load(path).signatures["serving_default"](user_id=tf.constant(["u1", "u2"]))
    # u1 scores m1 3, m2 2, m3 1, m4 0 and rated m1; u2 scores m4 5, the rest 0.
    assert out["movie_ids"].numpy()[0].tolist() == [b"m2", b"m3"]
    np.testing.assert_allclose(out["scores"].numpy()[0], [2.0, 1.0], rtol=1e-5)
    assert out["titles"].numpy()[0].tolist() == [b"Two", b"Three"]
    assert out["movie_ids"].numpy()[1][0] == b"m4"
