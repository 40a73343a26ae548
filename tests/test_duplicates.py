"""Duplicate titles (one title and year under several ids, as ml-100k's "Chasing Amy (1997)"
under 246 and 268): merged into the smallest id by read_tables, the other ids' ratings
remapped by MovieLensExampleGen, a user's ratings of two ids collapsed into one, the counts
logged and written, and the catalogue listing the title once."""
import collections
import json
import logging
import os

import pytest
from test_catalogue import read, run_component
from test_movielens import ITEM, USERS, run, write
from tfx.types import standard_artifacts

from components.movielens import Executor, MovieLensExampleGen
from components.movielens_formats import Movie, MovieLensError
from components.movielens_tables import merge_duplicates, read_tables

MOVIES = ITEM.format(268, "Chasing Amy") + ITEM.format(246, "Chasing Amy") + ITEM.format(302, "Heat")
# User 196 rated both ids, 268 later: that rating stays, as 246's. User 186 rated 268 only.
# User 7 rated both at one timestamp: the rating of 246, the id kept, stays.
RATINGS = ("196\t246\t2\t881250949\n"
           "196\t268\t5\t881250999\n"
           "186\t268\t4\t891717742\n"
           "196\t302\t3\t881250950\n"
           "7\t268\t1\t881250900\n"
           "7\t246\t3\t881250900\n")
SHARED_ML100K = "/work/shared/data/movielens/ml-100k"


def release(tmp_path, ratings=RATINGS):
    return write(tmp_path / "ml", {"u.data": ratings, "u.item": MOVIES, "u.user": USERS + "7|30|F|writer|0\n"})


def test_merge_duplicates_keeps_the_smallest_id_of_one_title_and_year():
    movie = lambda title, year: Movie(title, year, ["Drama"])  # noqa: E731
    movies, aliases = merge_duplicates({
        "1010": movie("Heat (1995)", 1995), "99": movie("Heat (1995)", 1995), "100": movie("Heat (1995)", 1995),
        "5": movie("Heat", 1986), "6": movie("Heat", 1995),  # one title, two years: two movies
        "7": movie("Heat (1995) ", 1995)})  # another title string
    assert aliases == {"100": "99", "1010": "99"}
    assert sorted(movies, key=int) == ["5", "6", "7", "99"]


def test_examplegen_remaps_and_collapses_ratings_of_duplicate_ids(tmp_path, caplog):
    report = str(tmp_path / "duplicates.json")
    with caplog.at_level(logging.INFO):
        splits = run(release(tmp_path), str(tmp_path / "out"), duplicates=report, eval_fraction=0.0)
    rows = {(r["user_id"], r["movie_id"]): (r["rating"], r["timestamp"]) for r in splits["train"]}
    assert len(rows) == len(splits["train"]) == 4  # one rating per (user, movie), none of 268
    assert rows == {("186", "246"): (4.0, 891717742),  # remapped
                    ("196", "246"): (5.0, 881250999),  # the later of 196's two
                    ("196", "302"): (3.0, 881250950),
                    ("7", "246"): (3.0, 881250900)}  # a tie: the kept id's
    assert {r["movie_title"] for r in splits["train"] if r["movie_id"] == "246"} == {"Chasing Amy (1995)"}
    assert json.load(open(report)) == {
        "file": f"{tmp_path}/ml/u.item", "titles_merged": 1, "ids_merged": 1, "ratings_remapped": 3,
        "ratings_collapsed": 2, "aliases": {"268": "246"}}
    assert "merged 1 duplicate titles of" in caplog.text
    assert "(ids 268->246): 3 ratings remapped, 2 collapsed" in caplog.text


def test_rating_one_merged_id_twice_is_still_a_duplicate(tmp_path):
    with pytest.raises(MovieLensError, match=r"u\.data:7: user 186 rated movie 268 again \(first at line 3\)"):
        run(release(tmp_path, RATINGS + "186\t268\t2\t891717743\n"), str(tmp_path / "out"))


def test_under_a_budget_only_the_genuine_duplicate_is_bad(tmp_path):
    bad_rows, duplicates = str(tmp_path / "bad_rows.json"), str(tmp_path / "duplicates.json")
    splits = run(release(tmp_path, RATINGS + "186\t268\t2\t891717743\n"), str(tmp_path / "out"), bad_rows,
                 duplicates, max_bad_row_fraction=0.5, eval_fraction=0.0)
    assert len(splits["train"]) == 4
    assert {reason: entry["count"] for reason, entry in json.load(open(bad_rows))["reasons"].items()} == {
        "duplicate": 1}
    written = json.load(open(duplicates))
    assert (written["ratings_remapped"], written["ratings_collapsed"]) == (4, 2)


def test_catalogue_lists_a_duplicate_title_once_under_the_kept_id(tmp_path):
    artifact = run_component(release(tmp_path), str(tmp_path / "catalogue"))
    _, rows = read(artifact.uri)
    assert [(row["movie_id"], row["movie_title"]) for row in rows] == [
        (["246"], ["Chasing Amy (1995)"]), (["302"], ["Heat (1995)"])]
    assert artifact.get_int_custom_property("duplicate_ids_merged") == 1


def test_tags_of_a_merged_id_count_for_the_kept_id(tmp_path):
    tables = read_tables(write(tmp_path / "ml", {
        "ratings.csv": "userId,movieId,rating,timestamp\n1,2,4.0,964982703\n",
        "movies.csv": "movieId,title,genres\n2,Emma (1996),Comedy\n1,Emma (1996),Comedy\n",
        "tags.csv": "userId,movieId,tag,timestamp\n1,2,Austen,1\n2,1,austen,2\n3,2,period,3\n"}))
    assert tables.aliases == {"2": "1"}
    assert tables.movies == {"1": Movie("Emma (1996)", 1996, ["Comedy"], ["austen", "period"])}


def test_executor_records_the_counts_beside_bad_rows(tmp_path):
    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / "examples")
    properties = MovieLensExampleGen(input_base=release(tmp_path), eval_fraction=0.0).exec_properties
    Executor().Do({}, {"examples": [examples]}, dict(properties))
    assert sorted(os.listdir(examples.uri)) == ["Split-eval", "Split-train", "bad_rows.json", "duplicates.json"]
    assert json.load(open(os.path.join(examples.uri, "duplicates.json")))["titles_merged"] == 1
    assert [examples.get_int_custom_property(f"duplicate_{key}")
            for key in ("titles_merged", "ratings_remapped", "ratings_collapsed")] == [1, 3, 2]


def _real_ml100k():
    for candidate in (os.environ.get("MOVIELENS_DIR"), SHARED_ML100K):
        if candidate and os.path.exists(os.path.join(candidate, "u.item")):
            return candidate
    return None


@pytest.mark.skipif(_real_ml100k() is None, reason="no ml-100k ($MOVIELENS_DIR or the shared copy)")
def test_real_ml100k_lists_no_title_twice():
    tables = read_tables(_real_ml100k())
    titles = collections.Counter((movie.title, movie.year) for movie in tables.movies.values())
    assert titles.most_common(1)[0][1] == 1
    assert len(tables.aliases) == 18 and len(tables.movies) == 1682 - 18
    assert tables.aliases["268"] == "246" and tables.movies["246"].title == "Chasing Amy (1997)"
