"""TensorFlow Datasets' MovieLens as MovieLensExampleGen's input: `tfds:movielens/<version>`,
the prepared `<version>-ratings` and `<version>-movies` datasets read into the file reader's
tables and ratings rows (as ratings.csv lines), so the checks, split and join are shared.

TFDS keeps neither tags nor ml-100k's release dates: movie_year comes from the title.
"""
import os
from typing import Iterator, Optional

import tensorflow_datasets as tfds

from components.movielens_formats import Movie, MovieLensError, Release, User, genre_list, parse_csv_rating, parse_year
from components.movielens_tables import Tables, merge_duplicates

VERSIONS = ("100k", "1m", "20m", "25m", "latest-small")
TABLES = ("ratings", "movies")
BATCH = 20_000  # rows per ratings chunk
OCCUPATIONS = {"other/not specified": "other"}  # TFDS' name of ml-1m's occupation 0
PREPARE = """\
TensorFlow Datasets' MovieLens {version} is not prepared in {data_dir} (no {missing}). Prepare it once
(about a minute for 100k), then pass --tfds-data-dir {data_dir} or set TFDS_DATA_DIR:
  .venv/bin/python -c "import tensorflow_datasets as tfds; [tfds.builder(f'movielens/{version}-{{t}}', \
data_dir='{data_dir}').download_and_prepare() for t in ('ratings', 'movies')]"
It downloads {url} once. Without network, put that zip (GroupLens' own: TFDS checks its sha256)
into {data_dir}/downloads/manual/ first; the same command then reads it from there."""


def dataset_dir(source: str, data_dir: Optional[str] = None) -> str:
    """`tfds:movielens/<version>` -> the prepared ratings dataset's directory under `data_dir`
    (default $TFDS_DATA_DIR, else ~/tensorflow_datasets); raises MovieLensError saying how to
    prepare it when it or its movies dataset is not prepared."""
    name, _, version = source.removeprefix("tfds:").partition("/")
    if not source.startswith("tfds:") or name != "movielens" or version not in VERSIONS:
        raise MovieLensError(f"data source {source!r} is not tfds:movielens/<version> with a version in "
                             f"{VERSIONS}, e.g. tfds:movielens/100k", "missing")
    data_dir = os.path.expanduser(data_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets")
    ratings, movies = (tfds.builder(f"movielens/{version}-{table}", data_dir=data_dir) for table in TABLES)
    missing = [str(builder.data_dir) for builder in (ratings, movies) if not builder.is_prepared()]
    if missing:
        raise MovieLensError(PREPARE.format(version=version, data_dir=data_dir, missing=" or ".join(missing),
                                            url=ratings.builder_config.download_url), "missing")
    return str(ratings.data_dir)


def _columns(builder: tfds.core.DatasetBuilder, *keys: str) -> Iterator[tuple]:
    """The train split's `keys` features as NumPy arrays, BATCH rows at a time, in stored order."""
    rows = builder.as_dataset(split="train", shuffle_files=False).map(lambda row: tuple(row[k] for k in keys))
    return tfds.as_numpy(rows.batch(BATCH))


def read_tables(ratings_dir: str) -> Tables:
    """The movies (from the `<version>-movies` dataset beside `ratings_dir`, duplicates merged) and,
    where the release has them, the users (from the ratings) of a prepared ratings dataset."""
    ratings_dir = ratings_dir.rstrip("/")
    ratings = tfds.builder_from_directory(ratings_dir)
    version = ratings.info.config_name.removesuffix("-ratings")
    movies_dir = os.path.join(os.path.dirname(os.path.dirname(ratings_dir)), f"{version}-movies",
                              os.path.basename(ratings_dir))
    movies = tfds.builder_from_directory(movies_dir)
    names = movies.info.features["movie_genres"].feature.names
    table = {}
    for row in tfds.as_numpy(movies.as_dataset(split="train", shuffle_files=False)):
        title = row["movie_title"].decode()
        table[row["movie_id"].decode()] = Movie(title, parse_year("", title), genre_list("|".join(
            names[label] for label in row["movie_genres"])))
    features = ratings.info.features
    users = {} if "user_zip_code" in features else None  # 100k and 1m have users
    age = "raw_user_age" if "raw_user_age" in features else "bucketized_user_age"  # 100k's are exact
    keys = ("user_id", age, "user_gender", "user_occupation_text", "user_zip_code")
    for batch in _columns(ratings, *keys) if users is not None else ():
        for user_id, years, male, job, zip_code in zip(*batch, strict=True):
            users[user_id.decode()] = User(int(years), "M" if male else "F",
                                           OCCUPATIONS.get(job.decode(), job.decode()), zip_code.decode())
    release = Release(f"tfds:movielens/{version}", "train", movies_dir, None, None, parse_csv_rating, None, None,
                      None, "utf-8")
    movies_table, aliases = merge_duplicates(table)
    return Tables(release, movies_table, users, aliases)


def read_chunks(path: str, header: bool = False) -> Iterator[tuple]:
    """Yields (first row number, [rows as 'user,movie,rating,timestamp' lines]) of the ratings
    dataset whose train split `path` names ('<dataset dir>/train'), BATCH rows each."""
    first = 1
    builder = tfds.builder_from_directory(os.path.dirname(path))
    for users, movies, ratings, times in _columns(builder, "user_id", "movie_id", "user_rating", "timestamp"):
        yield first, [b"%s,%s,%r,%d" % row for row in zip(users, movies, ratings.tolist(), times, strict=True)]
        first += len(users)
