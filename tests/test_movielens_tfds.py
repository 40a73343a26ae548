"""components/movielens_tfds.py and pipeline/data.py's tfds: sources: TensorFlow Datasets'
MovieLens builder prepares tiny hand-made releases locally (its download replaced by the
files, as TFDS's own DatasetBuilderTestCase does: never the network), and the ExampleGen
and the catalogue read them into the same examples as they read the files."""
import os
from unittest import mock

import pytest
import tensorflow_datasets as tfds
from test_catalogue import read, run_component
from test_movielens import ITEM, run, write
from tfx.types import standard_artifacts

from components.movielens import Executor, MovieLensExampleGen
from pipeline import data, local_runner

FLAGS = "|".join(["0"] * 19)  # u.item's 19 genre flags, none set
ML_100K = {  # ids 246 and 268: one title (merged); 9: unrated; 7: no genre; 8: unknown, Children's, Comedy
    "u.item": ITEM.format(268, "Chasing Amy") + ITEM.format(246, "Chasing Amy") + ITEM.format(9, "Unrated")
    + f"7|Blank (1996)|01-Jan-1996||http://x|{FLAGS}\n" + f"8|Kids (1995)|||http://x|1|0|0|0|1|1{FLAGS[11:]}\n",
    "u.user": "196|49|M|writer|55105\n186|39|F|none|00000\n7|17|F|other|1234\n",
    "u.data": "196\t246\t2\t881250949\n196\t268\t5\t881250999\n186\t268\t4\t891717742\n196\t7\t3\t881250950\n"
              "7\t8\t1\t881250900\n186\t8\t5\t891717700\n"}
ML_1M = {"ratings.dat": "1::2::5::978300760\n2::2::3::978300761\n", "movies.dat": "2::Jumanji (1995)::Children's\n",
         "users.dat": "1::F::25::12::48067\n2::M::1::0::10\n"}  # user 2: under 18, occupation 0 (other)
ML_LATEST_SMALL = {"ratings.csv": "userId,movieId,rating,timestamp\n1,11,4.5,964982703\n2,11,0.5,964982704\n",
                   "movies.csv": 'movieId,title,genres\n11,"President, The (1995)",(no genres listed)\n'}


def prepare(tmp_path, version: str, files: dict) -> tuple:
    """Writes `files` as TFDS's extracted ml-<version>.zip and prepares movielens/<version>-ratings
    and -movies from them; returns the files' directory and the ratings dataset's."""
    (tmp_path / "download").mkdir()
    files_dir = write(tmp_path / "download" / f"ml-{version}", files)
    with mock.patch("tensorflow_datasets.core.download.DownloadManager.download_and_extract",
                    return_value=str(tmp_path / "download")):
        for table in ("ratings", "movies"):
            tfds.builder(f"movielens/{version}-{table}", data_dir=str(tmp_path / "tfds")).download_and_prepare(
                download_config=tfds.download.DownloadConfig(compute_stats=tfds.download.ComputeStatsMode.SKIP))
    return files_dir, str(data.resolve(f"tfds:movielens/{version}", str(tmp_path / "tfds")))


@pytest.mark.parametrize("version, files, ratings", [("100k", ML_100K, 6), ("1m", ML_1M, 2),
                                                     ("latest-small", ML_LATEST_SMALL, 2)])
def test_tfds_examples_are_the_files_examples(tmp_path, version, files, ratings):
    files_dir, tfds_dir = prepare(tmp_path, version, files)
    from_files = run(files_dir, str(tmp_path / "files"), eval_fraction=0.5)
    from_tfds = run(tfds_dir, str(tmp_path / "tfds_out"), eval_fraction=0.5)
    assert from_tfds == from_files
    assert len(from_tfds["train"]) + len(from_tfds["eval"]) == ratings - (version == "100k")  # 196's 246 and 268: one


def test_tfds_100k_rows_hand_worked(tmp_path):
    _, tfds_dir = prepare(tmp_path, "100k", ML_100K)
    rows = {(row["user_id"], row["movie_id"]): row for row in run(tfds_dir, str(tmp_path / "out"),
                                                                   eval_fraction=0.0)["train"]}
    assert rows[("196", "246")]["rating"] == 5.0  # 268's later rating, under the kept id
    assert rows[("7", "8")] == {
        "user_id": "7", "movie_id": "8", "rating": 1.0, "timestamp": 881250900, "user_age": 17, "user_gender": "F",
        "user_occupation": "other", "user_zip": "1234", "movie_title": "Kids (1995)", "movie_year": 1995,
        "movie_genres": ["unknown", "Children's", "Comedy"], "movie_tags": []}
    assert rows[("196", "7")]["movie_genres"] == ["unknown"]


def test_executor_reads_a_tfds_dataset(tmp_path):
    _, tfds_dir = prepare(tmp_path, "latest-small", ML_LATEST_SMALL)
    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / "examples")
    Executor().Do({}, {"examples": [examples]}, dict(MovieLensExampleGen(input_base=tfds_dir).exec_properties))
    assert sorted(os.listdir(examples.uri)) == ["Split-eval", "Split-train", "bad_rows.json", "duplicates.json"]
    assert examples.get_int_custom_property("duplicate_titles_merged") == 0


def test_tfds_catalogue_is_the_files_catalogue(tmp_path):
    files_dir, tfds_dir = prepare(tmp_path, "100k", ML_100K)
    from_files = read(run_component(files_dir, str(tmp_path / "files")).uri)[1]
    assert read(run_component(tfds_dir, str(tmp_path / "tfds_out")).uri)[1] == from_files
    assert [row["movie_id"] for row in from_files] == [["7"], ["8"], ["9"], ["246"]]


def test_unprepared_tfds_source_exits_saying_how_to_prepare_it(tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        data.resolve("tfds:movielens/100k", str(tmp_path))
    message = str(exit_info.value.code)
    assert f"movielens/100k-ratings and -movies are not both prepared in {tmp_path}" in message
    assert f"tfds.builder(f'movielens/100k-{{t}}', \\\ndata_dir='{tmp_path}').download_and_prepare()" in message
    assert "https://files.grouplens.org/datasets/movielens/ml-100k.zip" in message
    assert f"{tmp_path}/downloads/manual/" in message


def test_data_source_is_the_data_dir_flag_with_a_tfds_data_dir():
    parser = local_runner.arguments("test")
    args = parser.parse_args(["--data-source", "tfds:movielens/1m", "--tfds-data-dir", "/data/tfds"])
    assert (args.data_dir, args.tfds_data_dir) == ("tfds:movielens/1m", "/data/tfds")
