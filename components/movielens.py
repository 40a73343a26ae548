"""MovieLensExampleGen: reads the ml-100k files into tf.Examples, one per rating,
each joined with its user's and its movie's features (see models/features.py).

    example_gen = MovieLensExampleGen(input_base="/path/to/ml-100k")

The ratings (`u.data`) are read and joined in a Beam pipeline; the small user and
movie tables (`u.user`, `u.item`) are side inputs. Train/eval splits come from the
component's output_config (hash buckets by default).
"""
import os
import re
from typing import Any, Dict, List, NamedTuple

import apache_beam as beam
import tensorflow as tf
from tfx.components.example_gen.base_example_gen_executor import BaseExampleGenExecutor
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec
from tfx.proto import example_gen_pb2

RATINGS_FILE, MOVIES_FILE, USERS_FILE = "u.data", "u.item", "u.user"
ENCODING = "latin-1"  # ml-100k's u.item holds Latin-1 titles
GENRES = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
          "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
          "Romance", "Sci-Fi", "Thriller", "War", "Western"]


class MovieLensError(ValueError):
    """A MovieLens file does not hold what its format says: names the file and line."""


class Movie(NamedTuple):
    title: str
    year: int  # 0 when neither the release date nor the title gives one
    genres: List[str]


class User(NamedTuple):
    age: int
    gender: str
    occupation: str


def _fields(line: str, sep: str, count: int, where: str) -> List[str]:
    fields = line.rstrip("\r\n").split(sep)
    if len(fields) != count:
        raise MovieLensError(f"{where}: expected {count} fields separated by {sep!r}, "
                             f"found {len(fields)} in {line.strip()!r}")
    return fields


def _int(text: str, what: str, where: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise MovieLensError(f"{where}: {what} {text!r} is not an integer") from None


def parse_year(release_date: str, title: str) -> int:
    """Year from a release date like '01-Jan-1995', else from a title like 'Heat (1995)'."""
    match = re.search(r"(\d{4})$", release_date.strip()) or re.search(r"\((\d{4})\)\s*$", title)
    return int(match.group(1)) if match else 0


def parse_movie(line: str, where: str) -> tuple:
    """One u.item line -> (movie_id, Movie)."""
    fields = _fields(line, "|", 5 + len(GENRES), where)
    _int(fields[0], "movie id", where)
    flags = fields[5:]
    if any(flag not in ("0", "1") for flag in flags):
        raise MovieLensError(f"{where}: genre flags must be 0 or 1, found {flags}")
    genres = [genre for genre, flag in zip(GENRES, flags) if flag == "1"] or ["unknown"]
    return fields[0], Movie(fields[1], parse_year(fields[2], fields[1]), genres)


def parse_user(line: str, where: str) -> tuple:
    """One u.user line -> (user_id, User)."""
    user_id, age, gender, occupation, _zip = _fields(line, "|", 5, where)
    _int(user_id, "user id", where)
    return user_id, User(_int(age, "age", where), gender, occupation)


def parse_rating(line: str, where: str) -> tuple:
    """One u.data line -> (user_id, movie_id, rating, timestamp)."""
    user_id, movie_id, rating, timestamp = _fields(line, "\t", 4, where)
    _int(user_id, "user id", where)
    _int(movie_id, "movie id", where)
    value = _int(rating, "rating", where)
    if not 1 <= value <= 5:
        raise MovieLensError(f"{where}: rating {value} is outside 1..5")
    return user_id, movie_id, float(value), _int(timestamp, "timestamp", where)


def read_table(path: str, parse) -> Dict[str, Any]:
    """Reads u.item or u.user into {id: record}, naming file and line on errors."""
    if not tf.io.gfile.exists(path):
        raise MovieLensError(f"{path}: file not found; is this an ml-100k directory?")
    table = {}
    with tf.io.gfile.GFile(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            if raw.strip():
                key, record = parse(raw.decode(ENCODING), f"{path}:{number}")
                table[key] = record
    if not table:
        raise MovieLensError(f"{path}: file is empty")
    return table


def to_example(rating: tuple, users: Dict[str, User], movies: Dict[str, Movie]) -> tf.train.Example:
    """Joins one parsed rating with its user and movie into a tf.Example."""
    user_id, movie_id, value, timestamp = rating
    if user_id not in users or movie_id not in movies:
        missing = f"user {user_id}" if user_id not in users else f"movie {movie_id}"
        raise MovieLensError(f"{RATINGS_FILE}: rating of {missing}, which is not in the catalogue")
    user, movie = users[user_id], movies[movie_id]

    def b(*values):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode() for v in values]))

    def i(value):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))

    return tf.train.Example(features=tf.train.Features(feature={
        "user_id": b(user_id), "movie_id": b(movie_id),
        "rating": tf.train.Feature(float_list=tf.train.FloatList(value=[value])),
        "timestamp": i(timestamp),
        "user_age": i(user.age), "user_gender": b(user.gender), "user_occupation": b(user.occupation),
        "movie_title": b(movie.title), "movie_year": i(movie.year), "movie_genres": b(*movie.genres),
    }))


@beam.ptransform_fn
def _MovieLensToExample(pipeline: beam.Pipeline, exec_properties: Dict[str, Any],
                        split_pattern: str) -> beam.pvalue.PCollection:
    data_dir = exec_properties["input_base"]
    users = read_table(os.path.join(data_dir, USERS_FILE), parse_user)
    movies = read_table(os.path.join(data_dir, MOVIES_FILE), parse_movie)
    path = os.path.join(data_dir, split_pattern)
    return (pipeline
            | "ReadRatings" >> beam.io.ReadFromText(path)
            | "Parse" >> beam.Map(lambda line: parse_rating(line, f"{path}: line {line!r}"))
            | "Join" >> beam.Map(to_example, users, movies))


class Executor(BaseExampleGenExecutor):
    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        return _MovieLensToExample


class MovieLensExampleGen(FileBasedExampleGen):
    """ExampleGen for a directory holding MovieLens 100K files."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

    def __init__(self, input_base: str, eval_fraction: float = 0.2):
        eval_buckets = round(eval_fraction * 100)
        super().__init__(
            input_base=input_base,
            input_config=example_gen_pb2.Input(splits=[
                example_gen_pb2.Input.Split(name="ratings", pattern=RATINGS_FILE)]),
            output_config=example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(splits=[
                example_gen_pb2.SplitConfig.Split(name="train", hash_buckets=100 - eval_buckets),
                example_gen_pb2.SplitConfig.Split(name="eval", hash_buckets=eval_buckets)])))
