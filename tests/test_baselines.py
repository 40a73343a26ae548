"""benchmarks.baselines: the reference split, interactions, popularity and EASE."""
import numpy as np
import pandas as pd
import pytest

from benchmarks import baselines
from models import metrics


def test_stack_split_keeps_ids_as_strings_and_splits_80_20(tmp_path):
    rows = [f"{u}\t{m:03d}\t{r}\t{880000000 + i}" for i, (u, m, r) in
            enumerate([(1, 1, 5), (1, 2, 3), (2, 1, 4), (2, 3, 1), (3, 2, 2)] * 2)]
    (tmp_path / "u.data").write_text("\n".join(rows) + "\n")
    train, test = baselines.stack_split(str(tmp_path))
    assert (len(train), len(test)) == (8, 2)
    assert list(train.columns) == ["user_id", "movie_id", "rating", "timestamp"]
    assert set(train.movie_id) | set(test.movie_id) == {"001", "002", "003"}
    assert train.rating.dtype == float and train.timestamp.dtype == np.int64
    order = np.random.default_rng(42).permutation(10)  # the protocol: first 80% of this order
    assert sorted(train.timestamp - 880000000) == sorted(order[:8])


def test_interactions_by_hand():
    train = pd.DataFrame({"user_id": ["10", "2", "2"], "movie_id": ["1", "3", "1"]})
    test = pd.DataFrame({"user_id": ["2", "10", "7"], "movie_id": ["2", "3", "9"]})
    data = baselines.interactions(train, test, movies=["1", "2", "3"])
    assert data.users == {"2": 0, "7": 1, "10": 2} and data.items == {"1": 0, "2": 1, "3": 2}
    assert data.train.toarray().tolist() == [[1, 0, 1], [0, 0, 0], [1, 0, 0]]
    assert data.relevant == [{1}, set(), {2}]  # movie 9 is not in the catalogue


def test_popularity_and_ease_by_hand():
    x = baselines.interactions(pd.DataFrame({"user_id": ["1", "1", "2"], "movie_id": ["1", "2", "1"]}),
                               pd.DataFrame({"user_id": [], "movie_id": []})).train  # [[1, 1], [1, 0]]
    assert baselines.popularity_scores(x).tolist() == [[2, 1], [2, 1]]
    # X^T X + 1 I = [[3, 1], [1, 2]], P = [[2, -1], [-1, 3]] / 5, B = -P / diag(P) = [[0, 1/3], [1/2, 0]]
    assert baselines.ease_scores(x, lam=1.0) == pytest.approx(np.array([[1 / 2, 1 / 3], [0, 1 / 3]]))


@pytest.mark.skipif(baselines.find_data_dir() is None, reason="no ml-100k ($MOVIELENS_DIR or the shared copy)")
def test_reference_figures_of_stack_md():
    data_dir = baselines.find_data_dir()
    data = baselines.interactions(*baselines.stack_split(data_dir), baselines.movie_ids(data_dir))
    assert data.train.shape == (943, 1682) and data.train.nnz == 80_000
    want = {"popularity": (0.116, 0.217, 0.425), "ease": (0.234, 0.441, 0.703)}
    for name, scores in (("popularity", baselines.popularity_scores), ("ease", baselines.ease_scores)):
        got = metrics.ranking_metrics(baselines.top_k_masked(scores(data.train), data.train, k=100),
                                      data.relevant, ks=(10, 100))
        assert tuple(round(got[key], 3) for key in ("recall@10", "ndcg@10", "recall@100")) == want[name]
