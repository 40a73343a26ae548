"""The ExampleGen's splits (components/movielens.py): each kind's properties on a tiny
hand-made release, and determinism: same seed and input, same split; another seed, another."""
import random

import pytest
from test_movielens import ITEM, run, write

from benchmarks import synthetic
from components.movielens import eval_flags, is_eval_random, temporal_cut

# (user, movie, timestamp); user 2's last two ratings share a timestamp, user 3 has one rating.
RATINGS = [(1, 1, 100), (1, 2, 200), (1, 3, 300), (1, 4, 400), (1, 5, 500),
           (2, 1, 150), (2, 2, 450), (2, 3, 450), (3, 4, 50)]


@pytest.fixture
def tiny(tmp_path):
    lines = [f"{user}\t{movie}\t4\t{ts}\n" for user, movie, ts in RATINGS]
    random.Random(0).shuffle(lines)  # the split must not depend on the file's order
    return write(tmp_path / "ml", {
        "u.data": "".join(lines), "u.item": "".join(ITEM.format(m, f"Film {m}") for m in range(1, 6)),
        "u.user": "".join(f"{u}|30|F|writer|0\n" for u in (1, 2, 3))})


def pairs(split):
    return {(int(row["user_id"]), int(row["movie_id"])) for row in split}


def test_temporal_cut_puts_the_latest_fraction_in_eval_ties_included(tiny, tmp_path):
    splits = run(tiny, str(tmp_path / "out"), split="temporal", eval_fraction=0.2)
    # 9 timestamps: the cut is the 8th smallest (450); both ratings at 450 go to eval.
    assert pairs(splits["eval"]) == {(1, 5), (2, 2), (2, 3)}
    assert max(r["timestamp"] for r in splits["train"]) < min(r["timestamp"] for r in splits["eval"])


@pytest.mark.parametrize("n, expected", [(1, {(1, 5), (2, 3)}), (2, {(1, 4), (1, 5), (2, 2), (2, 3)})])
def test_leave_last_n_per_user_by_timestamp_then_movie(tiny, tmp_path, n, expected):
    splits = run(tiny, str(tmp_path / "out"), split="leave_last_n", leave_last_n=n)
    assert pairs(splits["eval"]) == expected  # user 3's single rating stays in train
    assert pairs(splits["train"]) == {(u, m) for u, m, _ in RATINGS} - expected


def test_random_split_is_the_seeded_hash(tiny, tmp_path):
    splits = run(tiny, str(tmp_path / "out"), split="random", eval_fraction=0.5, split_seed=3)
    expected = {(u, m) for u, m, ts in RATINGS if is_eval_random((str(u), str(m), 4.0, ts), 3, 0.5)}
    assert pairs(splits["eval"]) == expected
    assert pairs(splits["train"]) == {(u, m) for u, m, _ in RATINGS} - expected


def test_random_split_same_seed_same_split_other_seed_other_split(tmp_path):
    data_dir = str(synthetic.write(str(tmp_path / "ml"), users=20, movies=30, ratings=200, seed=1))
    first = run(data_dir, str(tmp_path / "a"), split_seed=42)
    again = run(data_dir, str(tmp_path / "b"), split_seed=42)
    other = run(data_dir, str(tmp_path / "c"), split_seed=7)
    assert first == again
    assert pairs(first["eval"]) != pairs(other["eval"])
    for splits in (first, other):
        assert len(splits["train"]) + len(splits["eval"]) == 200
        assert not pairs(splits["train"]) & pairs(splits["eval"])


# The pure functions behind the splits

def test_is_eval_random_matches_the_fraction():
    keys = [(str(u), str(m), 3.0, 880000000 + m) for u in range(100) for m in range(100)]
    share = sum(is_eval_random(key, 42, 0.2) for key in keys) / len(keys)
    assert 0.19 < share < 0.21
    assert not any(is_eval_random(key, 42, 0.0) for key in keys[:500])


def test_is_eval_random_depends_on_seed_only_through_the_hash():
    key = ("196", "242", 3.0, 881250949)
    assert is_eval_random(key, 42, 0.2) == is_eval_random(key, 42, 0.2)
    assert len({is_eval_random(key, seed, 0.5) for seed in range(20)}) == 2


@pytest.mark.parametrize("values, fraction, cut", [
    (list(range(10, 20)), 0.2, 18),  # fewer values than quantiles: exact, 2 of 10 at or after 18
    (list(range(10, 20)), 0.0, 20),  # nothing in eval
    ([5], 0.2, 5 + 1),  # round(0.2) = 0 values in eval
    (list(range(1001)), 0.2, 800),  # 1,001 quantiles: the 0.8 quantile
    ([], 0.2, 0),
])
def test_temporal_cut(values, fraction, cut):
    assert temporal_cut(values, fraction) == cut


def test_eval_flags_leave_last_n_breaks_timestamp_ties_by_movie_id():
    ratings = [("1", "b", 4.0, 10), ("1", "a", 4.0, 10), ("1", "c", 4.0, 5)]
    options = {"split": "leave_last_n", "eval_fraction": 0.2, "split_seed": 42, "leave_last_n": 1}
    assert eval_flags(ratings, options, 0) == [True, False, False]
    assert eval_flags(ratings[:1], options, 0) == [False]
