"""Tests of components/movielens.py's Beam ExampleGen on tiny hand-made releases: the
joined examples of each release, and every kind of malformed input, rejected with file,
line and problem or, under a bad-row budget, counted and reported."""
import json
import os

import apache_beam as beam
import pytest
import tensorflow as tf
from apache_beam.options.pipeline_options import PipelineOptions

from components.movielens import MovieLensExampleGen, generate_splits, report_bad_rows
from components.movielens_formats import MovieLensError

ITEM = "{}|{} (1995)|01-Jan-1995||http://x|" + "|".join(["0"] * 8 + ["1"] + ["0"] * 10) + "\n"
USERS = "196|49|M|writer|55105\n186|39|F|executive|00000\n"
MOVIES = ITEM.format(242, "Kolya") + ITEM.format(302, "Heat")
GOOD = "196\t242\t3\t881250949\n186\t302\t5\t891717742\n196\t302\t4\t881250950\n"


def write(directory, files):
    directory.mkdir(exist_ok=True)
    for name, text in files.items():
        (directory / name).write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(directory)


def release_100k(tmp_path, ratings=GOOD):
    return write(tmp_path / "ml", {"u.data": ratings, "u.item": MOVIES, "u.user": USERS})


def run(data_dir, out_dir, report=None, duplicates=None, **options):
    """Runs generate_splits; returns {split: [feature dict per example]} sorted by (user, movie)."""
    options = {"split": "random", "eval_fraction": 0.2, "split_seed": 42, "leave_last_n": 1,
               "max_bad_row_fraction": 0.0, **options}
    with beam.Pipeline(options=PipelineOptions(["--direct_running_mode=in_memory"])) as pipeline:
        for name, examples in generate_splits(pipeline, data_dir, options, report, duplicates).items():
            _ = (examples | f"Serialize{name}" >> beam.Map(lambda e: e.SerializeToString())
                 | f"Write{name}" >> beam.io.WriteToTFRecord(os.path.join(out_dir, name)))
    splits = {}
    for name in ("train", "eval"):
        records = tf.data.TFRecordDataset(tf.io.gfile.glob(os.path.join(out_dir, name + "*")))
        rows = [_values(tf.train.Example.FromString(r.numpy())) for r in records]
        splits[name] = sorted(rows, key=lambda row: (row["user_id"], row["movie_id"]))
    return splits


def _values(example):
    out = {}
    for key, feature in example.features.feature.items():
        kind = feature.WhichOneof("kind")
        vals = [v.decode() if isinstance(v, bytes) else v for v in getattr(feature, kind).value] if kind else []
        out[key] = vals[0] if key not in ("movie_genres", "movie_tags") else vals
    return out


# Joined examples per release

def test_100k_examples_join_user_and_movie(tmp_path):
    splits = run(release_100k(tmp_path), str(tmp_path / "out"), eval_fraction=0.0)
    assert splits["eval"] == []
    assert splits["train"][0] == {
        "user_id": "186", "movie_id": "302", "rating": 5.0, "timestamp": 891717742, "user_age": 39,
        "user_gender": "F", "user_occupation": "executive", "user_zip": "00000",
        "movie_title": "Heat (1995)", "movie_year": 1995, "movie_genres": ["Drama"], "movie_tags": []}
    assert [(r["user_id"], r["movie_id"]) for r in splits["train"]] == [("186", "302"), ("196", "242"),
                                                                         ("196", "302")]


@pytest.mark.parametrize("files, expected", [
    ({"ratings.dat": "1::2::5::978300760\n", "movies.dat": "2::Jumanji (1995)::Adventure|Children's\n",
      "users.dat": "1::F::25::12::48067\n"},
     {"user_id": "1", "movie_id": "2", "rating": 5.0, "timestamp": 978300760, "user_age": 25, "user_gender": "F",
      "user_occupation": "programmer", "user_zip": "48067", "movie_title": "Jumanji (1995)", "movie_year": 1995,
      "movie_genres": ["Adventure", "Children's"], "movie_tags": []}),
    ({"ratings.dat": "5::122::3.5::838985046\n", "movies.dat": "122::Boomerang (1992)::Comedy|Romance\n",
      "tags.dat": "15::122::Eddie Murphy::1215184630\n"},
     {"user_id": "5", "movie_id": "122", "rating": 3.5, "timestamp": 838985046, "user_age": 0, "user_gender": "",
      "user_occupation": "", "user_zip": "", "movie_title": "Boomerang (1992)", "movie_year": 1992,
      "movie_genres": ["Comedy", "Romance"], "movie_tags": ["eddie murphy"]}),
], ids=["ml-1m: user codes decoded", "ml-10m: half stars, tags, no demographics"])
def test_dat_release_examples(tmp_path, files, expected):
    [row] = run(write(tmp_path / "ml", files), str(tmp_path / "out"), eval_fraction=0.0)["train"]
    assert row == expected


def test_csv_examples_skip_the_header(tmp_path):
    data_dir = write(tmp_path / "ml", {
        "ratings.csv": "userId,movieId,rating,timestamp\n1,11,4.5,964982703\n",
        "movies.csv": 'movieId,title,genres\n11,"President, The (1995)",(no genres listed)\n'})
    [row] = run(data_dir, str(tmp_path / "out"), eval_fraction=0.0)["train"]
    assert (row["user_id"], row["rating"], row["movie_title"], row["movie_genres"]) == (
        "1", 4.5, "President, The (1995)", ["unknown"])


# Malformed input: each one rejected with file, line and problem

@pytest.mark.parametrize("bad_line, problem", [
    ("196\t242\t3\n", r"u\.data:2: expected 4 fields separated by '\\t', found 3"),
    ("196\t242\tgood\t881250949\n", r"u\.data:2: rating 'good' is not a number"),
    ("196\t242\t6\t881250949\n", r"u\.data:2: rating 6 is outside 1\.\.5"),
    ("196\t999\t3\t881250949\n", r"u\.data:2: rating of movie 999, which is not in u\.item"),
    ("7\t242\t3\t881250949\n", r"u\.data:2: rating by user 7, who is not in u\.user"),
    (b"19\xff6\t242\t3\t881250949\n", r"u\.data:2: bytes .* are not valid utf-8"),
    ("186\t302\t1\t891717743\n", r"u\.data:4: user 186 rated movie 302 again \(first at line 2\)"),
])
def test_malformed_row_names_file_line_and_problem(tmp_path, bad_line, problem):
    lines = GOOD.encode().splitlines(keepends=True)
    bad = bad_line if isinstance(bad_line, bytes) else bad_line.encode()
    ratings = lines[0] + bad + b"".join(lines[1:]) if "again" not in problem else GOOD.encode() + bad
    with pytest.raises(MovieLensError, match=problem):
        run(release_100k(tmp_path, ratings), str(tmp_path / "out"))


@pytest.mark.parametrize("ratings", ["", "\n\n"])
def test_empty_ratings_file_is_rejected(tmp_path, ratings):
    with pytest.raises(MovieLensError, match=r"u\.data: file is empty \(no ratings\)"):
        run(release_100k(tmp_path, ratings), str(tmp_path / "out"))


def test_header_only_csv_ratings_file_is_empty(tmp_path):
    data_dir = write(tmp_path / "ml", {"ratings.csv": "userId,movieId,rating,timestamp\n",
                                       "movies.csv": "movieId,title,genres\n1,Heat (1995),Action\n"})
    with pytest.raises(MovieLensError, match=r"ratings\.csv: file is empty"):
        run(data_dir, str(tmp_path / "out"))


# Malformed input under a bad-row budget: counted, reported, never silently dropped

BAD_ROWS = GOOD + "196\t242\t2\t881250951\n196\t999\t3\t0\nx\n"  # duplicate, unknown movie, field count


def test_bad_rows_within_budget_are_counted_and_reported(tmp_path):
    report = str(tmp_path / "bad_rows.json")
    splits = run(release_100k(tmp_path, BAD_ROWS), str(tmp_path / "out"), report, max_bad_row_fraction=0.5,
                 eval_fraction=0.0)
    assert len(splits["train"]) == 3
    kept = [r for r in splits["train"] if (r["user_id"], r["movie_id"]) == ("196", "242")]
    assert [r["rating"] for r in kept] == [3.0]  # the first of the duplicates, by line
    written = json.load(open(report))
    assert (written["rows"], written["bad_rows"]) == (6, 3)
    assert {reason: entry["count"] for reason, entry in written["reasons"].items()} == {
        "duplicate": 1, "field_count": 1, "unknown_movie": 1}
    assert written["reasons"]["duplicate"]["examples"][0].startswith(
        f"{tmp_path}/ml/u.data:4: user 196 rated movie 242 again (first at line 1)")


def test_bad_rows_over_budget_fail_the_run_with_counts(tmp_path):
    with pytest.raises(MovieLensError, match=r"3 of 6 rows are bad \(50\.00%\), over the allowed "
                                             r"max_bad_row_fraction=0\.2 \(duplicate 1, field_count 1, "
                                             r"unknown_movie 1\)"):
        run(release_100k(tmp_path, BAD_ROWS), str(tmp_path / "out"), max_bad_row_fraction=0.2)


def test_report_bad_rows_counts_without_bad_rows(tmp_path):
    path = str(tmp_path / "r.json")
    report_bad_rows("u.data", 10, {}, {}, 0.0, path)
    assert (json.load(open(path))["rows"], json.load(open(path))["bad_rows"]) == (10, 0)


# The component

def test_component_rejects_unknown_split():
    with pytest.raises(ValueError, match=r"split 'by_genre' is not one of \('random', 'temporal', "
                                         r"'leave_last_n'\)"):
        MovieLensExampleGen(input_base="/data", split="by_genre")


def test_component_carries_split_options():
    component = MovieLensExampleGen(input_base="/data", split="leave_last_n", leave_last_n=2,
                                    max_bad_row_fraction=0.01)
    params = component.exec_properties
    assert (params["split"], params["leave_last_n"], params["max_bad_row_fraction"]) == ("leave_last_n", 2, 0.01)
    assert params["eval_fraction"] == 0.2 and params["split_seed"] == 42
