"""A MovieLens release's tables read into memory, and the tf.Example join of a rating. The movies, users and tags files
are small (32M's movies.csv: 87K lines): read in the driver, they reach the Beam workers as side inputs. A title
listed under several ids (ml-100k has 18) is one movie: read_tables keeps the smallest id and `tables.aliases` maps
the others to it, so the catalogue and the ExampleGen list it once."""
import collections
import functools
import logging
import os
from typing import Dict, NamedTuple, Optional, Tuple

import tensorflow as tf

from components.movielens_formats import ENCODING, Movie, MovieLensError, Rating, Release, User, decode, detect_release

MAX_TAGS = 20  # most frequent tags kept per movie
CSV_HEADERS = {"ratings.csv": "userId,movieId,rating,timestamp", "movies.csv": "movieId,title,genres",
               "tags.csv": "userId,movieId,tag,timestamp"}


def read_lines(path: str, encoding: str = ENCODING, header: bool = False):
    """Yields (where, text) for each non-blank line of `path`, where = 'path:line'; with `header`, the
    first line must be the CSV header of the file's name (CSV_HEADERS)."""
    if not tf.io.gfile.exists(path):
        raise MovieLensError(f"{path}: file not found; is this a MovieLens directory?", "missing")
    expected = CSV_HEADERS.get(os.path.basename(path))
    with tf.io.gfile.GFile(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            if number == 1 and header:
                text = decode(raw, encoding, f"{path}:1")
                if expected and text.lstrip("\ufeff").strip() != expected:
                    raise MovieLensError(f"{path}:1: expected the header {expected!r}, found {text.strip()!r}",
                                         "field_count")
            elif raw.strip():
                yield f"{path}:{number}", decode(raw, encoding, f"{path}:{number}")


def read_table(path: str, parse, encoding: str = ENCODING, header: bool = False) -> Dict:
    """Reads a movies or users file into {id: record}, naming file and line on errors."""
    table, lines = {}, {}
    for where, text in read_lines(path, encoding, header):
        key, record = parse(text, where)
        if key in table:
            raise MovieLensError(f"{where}: id {key} again, first at line {lines[key]}", "duplicate")
        table[key], lines[key] = record, where.rsplit(":", 1)[1]
    if not table:
        raise MovieLensError(f"{path}: file is empty", "empty")
    return table


def id_order(movie_id: str) -> tuple:
    """Sort key of movie ids: numeric ids by value, then any others by text."""
    return (0, int(movie_id), "") if movie_id.isdigit() else (1, 0, movie_id)


def merge_duplicates(movies: Dict[str, Movie]) -> Tuple[Dict[str, Movie], Dict[str, str]]:
    """(`movies` less all but the smallest id of each title and year, {dropped id: kept id})."""
    groups: Dict[tuple, list] = collections.defaultdict(list)
    for movie_id, movie in movies.items():
        groups[(movie.title, movie.year)].append(movie_id)
    aliases = {}
    for ids in groups.values():
        canonical, *others = sorted(ids, key=id_order)
        aliases.update(dict.fromkeys(others, canonical))
    return {key: movie for key, movie in movies.items() if key not in aliases}, aliases


def read_tags(path: str, release: Release, movies: Dict[str, Movie], aliases: Dict[str, str]) -> Dict[str, Movie]:
    """`movies` with each one's MAX_TAGS most frequent tags (lower-cased) from the tags file;
    tags of an id in `aliases` count for the id it maps to."""
    counts: Dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    unknown = 0
    for where, text in read_lines(path, release.encoding, release.header):
        movie_id, tag = release.parse_tag(text, where)
        movie_id = aliases.get(movie_id, movie_id)
        if movie_id not in movies:
            unknown += 1
        elif tag.strip():
            counts[movie_id][tag.strip().lower()] += 1
    if unknown:
        logging.warning("%s: %d tags name movies missing from the movies file; those tags are unused", path, unknown)
    return {movie_id: movie._replace(tags=[tag for tag, _ in sorted(
        counts[movie_id].items(), key=lambda item: (-item[1], item[0]))[:MAX_TAGS]])
        for movie_id, movie in movies.items()}


class Tables(NamedTuple):
    release: Release
    movies: Dict[str, Movie]
    users: Optional[Dict[str, User]]  # None where the release has no users file
    aliases: Dict[str, str] = {}  # duplicate movie id -> the id it was merged into


def read_tables(data_dir: str) -> Tables:
    """Detects the release in `data_dir`; reads its movies (duplicates merged, with tags) and users."""
    if tf.io.gfile.exists(os.path.join(data_dir, "dataset_info.json")):  # a prepared TFDS dataset
        from components import movielens_tfds  # imports TensorFlow Datasets only when used
        return movielens_tfds.read_tables(data_dir)
    release = detect_release(data_dir)
    path = functools.partial(os.path.join, data_dir)
    read = functools.partial(read_table, encoding=release.encoding, header=release.header)
    movies, aliases = merge_duplicates(read(path(release.movies), release.parse_movie))
    if release.tags and tf.io.gfile.exists(path(release.tags)):
        movies = read_tags(path(release.tags), release, movies, aliases)
    users = read(path(release.users), release.parse_user) if release.users else None
    return Tables(release, movies, users, aliases)


def _bytes(*values: str) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode() for v in values]))


def _int64(value: int) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))


def movie_features(movie_id: str, movie: Movie) -> Dict[str, tf.train.Feature]:
    """movie_id, movie_title, movie_year, movie_genres (1+ values), movie_tags (0+ values)."""
    return {"movie_id": _bytes(movie_id), "movie_title": _bytes(movie.title),
            "movie_year": _int64(movie.year), "movie_genres": _bytes(*movie.genres), "movie_tags": _bytes(*movie.tags)}


def to_example(rating: Rating, user: User, movie: Movie) -> tf.train.Example:
    """One rating joined with its user's and its movie's features."""
    user_id, movie_id, value, timestamp = rating
    return tf.train.Example(features=tf.train.Features(feature={
        "user_id": _bytes(user_id), "rating": tf.train.Feature(float_list=tf.train.FloatList(value=[value])),
        "timestamp": _int64(timestamp), "user_age": _int64(user.age), "user_gender": _bytes(user.gender),
        "user_occupation": _bytes(user.occupation), "user_zip": _bytes(user.zip), **movie_features(movie_id, movie)}))
