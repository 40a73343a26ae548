"""components/catalogue.py: MovieCatalogueGen writes every movie of the release, rated or
not, with its features, as the Examples split "catalogue"."""
import os

import tensorflow as tf
from test_movielens import ITEM, USERS, write
from tfx.types import artifact_utils, standard_artifacts

from components.catalogue import FILE_NAME, MovieCatalogueGen


def read(uri):
    files = tf.io.gfile.glob(os.path.join(uri, "Split-catalogue", "*.gz"))
    rows = []
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
        feature = tf.train.Example.FromString(record.numpy()).features.feature
        rows.append({key: [v.decode() if isinstance(v, bytes) else v
                           for v in getattr(value, value.WhichOneof("kind")).value]
                     for key, value in feature.items()})
    return files, rows


def run_component(data_dir, uri):
    artifact = standard_artifacts.Examples()
    artifact.uri = uri
    executor = MovieCatalogueGen.EXECUTOR_SPEC.executor_class()
    executor.Do({}, {"catalogue": [artifact]}, {"input_base": data_dir})
    return artifact


def test_catalogue_holds_every_movie_rated_or_not_in_id_order(tmp_path):
    movies = ITEM.format(302, "Heat") + ITEM.format(9, "Unrated") + ITEM.format(242, "Kolya")
    data_dir = write(tmp_path / "ml", {"u.data": "196\t242\t3\t881250949\n", "u.item": movies, "u.user": USERS})
    artifact = run_component(data_dir, str(tmp_path / "catalogue"))
    files, rows = read(artifact.uri)
    assert [os.path.basename(f) for f in files] == [FILE_NAME]
    assert artifact_utils.decode_split_names(artifact.split_names) == ["catalogue"]
    assert [row["movie_id"] for row in rows] == [["9"], ["242"], ["302"]]
    assert rows[0] == {"movie_id": ["9"], "movie_title": ["Unrated (1995)"], "movie_year": [1995],
                       "movie_genres": ["Drama"], "movie_tags": []}
    assert artifact.get_string_custom_property("file_format") == "tfrecords_gzip"


def test_catalogue_of_a_csv_release_carries_tags(tmp_path):
    data_dir = write(tmp_path / "ml", {
        "ratings.csv": "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n",
        "movies.csv": "movieId,title,genres\n1,Toy Story (1995),Animation|Children\n2,Unrated,(no genres listed)\n",
        "tags.csv": "userId,movieId,tag,timestamp\n1,2,Pixar,1\n2,2,pixar,2\n3,2,cgi,3\n"})
    _, rows = read(run_component(data_dir, str(tmp_path / "catalogue")).uri)
    assert rows == [
        {"movie_id": ["1"], "movie_title": ["Toy Story (1995)"], "movie_year": [1995],
         "movie_genres": ["Animation", "Children's"], "movie_tags": []},
        {"movie_id": ["2"], "movie_title": ["Unrated"], "movie_year": [0], "movie_genres": ["unknown"],
         "movie_tags": ["pixar", "cgi"]}]


def test_catalogue_component_output_is_named_catalogue():
    component = MovieCatalogueGen(input_base="/data")
    assert set(component.outputs) == {"catalogue"}
    assert component.outputs["catalogue"].type is standard_artifacts.Examples
