"""TensorFlow Datasets' MovieLens (`tfds:movielens/<version>`) as MovieLensExampleGen's input: the
prepared `<version>-ratings` and `-movies` datasets read into the file reader's tables and ratings
rows (ratings.csv lines), so the checks, split and join are shared. TFDS keeps neither tags nor
ml-100k's release dates: movie_year comes from the title."""
from typing import Iterator

import tensorflow_datasets as tfds

from components.movielens_formats import Movie, Release, User, genre_list, parse_csv_rating, parse_year
from components.movielens_tables import Tables, merge_duplicates

BATCH = 20_000  # rows per ratings chunk
OCCUPATIONS = {"other/not specified": "other"}  # TFDS' name of ml-1m's occupation 0


def _columns(builder: tfds.core.DatasetBuilder, *keys: str) -> Iterator[tuple]:
    """The train split's `keys` features as NumPy arrays, BATCH rows at a time, in stored order."""
    rows = builder.as_dataset(split="train", shuffle_files=False).map(lambda row: tuple(row[k] for k in keys))
    return tfds.as_numpy(rows.batch(BATCH))


def read_tables(ratings_dir: str) -> Tables:
    """The movies (of the `<version>-movies` dataset beside `ratings_dir`, duplicates merged) and,
    where the release has them, the users (from the ratings) of a prepared ratings dataset."""
    ratings = tfds.builder_from_directory(ratings_dir)
    head, _, tail = ratings_dir.rpartition("-ratings/")
    movies = tfds.builder_from_directory(f"{head}-movies/{tail}")
    names, table = movies.info.features["movie_genres"].feature.names, {}
    for row in tfds.as_numpy(movies.as_dataset(split="train", shuffle_files=False)):
        title = row["movie_title"].decode()
        genres = genre_list("|".join(names[label] for label in row["movie_genres"]))
        table[row["movie_id"].decode()] = Movie(title, parse_year("", title), genres)
    features = ratings.info.features
    age = "raw_user_age" if "raw_user_age" in features else "bucketized_user_age"  # 100k's are exact
    users = None if "user_zip_code" not in features else {  # 100k's and 1m's
        user_id.decode(): User(int(years), "M" if male else "F", OCCUPATIONS.get(job.decode(), job.decode()),
                               zip_code.decode())
        for batch in _columns(ratings, "user_id", age, "user_gender", "user_occupation_text", "user_zip_code")
        for user_id, years, male, job, zip_code in zip(*batch, strict=True)}
    release = Release(f"tfds:{ratings.info.full_name}", "train", movies.data_dir, None, None, parse_csv_rating,
                      None, None, None, "utf-8")
    movies_table, aliases = merge_duplicates(table)
    return Tables(release, movies_table, users, aliases)


def read_chunks(path: str, header: bool = False) -> Iterator[tuple]:
    """Yields (first row number, [rows as 'user,movie,rating,timestamp' lines]) of the ratings
    dataset whose train split `path` names ('<dataset dir>/train'), BATCH rows each."""
    first, builder = 1, tfds.builder_from_directory(path.removesuffix("/train"))
    for users, movies, ratings, times in _columns(builder, "user_id", "movie_id", "user_rating", "timestamp"):
        yield first, [b"%s,%s,%r,%d" % row for row in zip(users, movies, ratings.tolist(), times, strict=True)]
        first += len(users)
