"""The MovieLens releases' file formats and release detection: each release's files, line parsers and encoding
in ML_100K, ML_1M, ML_10M and ML_CSV below (a table of them: README.md, "Releases, splits and bad rows").

Every parser takes one decoded line and `where` ("path:line") and raises MovieLensError naming `where`, the problem
and a `reason` (used to count bad rows). Reading the tables and building tf.Examples: components/movielens_tables.py."""
import csv
import functools
import os
import re
from typing import Callable, List, NamedTuple, Optional, Tuple

import tensorflow as tf

ENCODING = "latin-1"  # ml-100k's u.item holds Latin-1 titles
GENRES = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
          "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
          "Romance", "Sci-Fi", "Thriller", "War", "Western"]  # ml-100k's u.item flag order
_GENRE_ALIASES = {"(no genres listed)": "unknown", "Unknown": "unknown", "Children": "Children's"}
OCCUPATIONS_1M = ["other", "academic/educator", "artist", "clerical/admin", "college/grad student",
                  "customer service", "doctor/health care", "executive/managerial", "farmer",
                  "homemaker", "K-12 student", "lawyer", "programmer", "retired", "sales/marketing",
                  "scientist", "self-employed", "technician/engineer", "tradesman/craftsman",
                  "unemployed", "writer"]  # ml-1m's users.dat occupation codes 0..20
AGE_GROUPS_1M = (1, 18, 25, 35, 45, 50, 56)  # ml-1m's age codes: each group's lower bound, 1 = under 18


class MovieLensError(ValueError):
    """A MovieLens file does not hold what its format says: names the file, line and problem;
    `reason` names the kind (field_count, not_a_number, out_of_range, unknown_user, ...) for bad-row counts."""

    def __init__(self, message: str, reason: str = "format"):
        super().__init__(message)
        self.reason = reason


class Movie(NamedTuple):
    title: str
    year: int  # 0 when neither the release date nor the title gives one
    genres: List[str]
    tags: List[str] = []


class User(NamedTuple):
    age: int  # 0 = unknown
    gender: str  # "" = unknown
    occupation: str
    zip: str = ""


UNKNOWN_USER = User(0, "", "", "")
Rating = Tuple[str, str, float, int]  # user_id, movie_id, rating, timestamp


def _fields(line: str, sep: str, count: int, where: str) -> List[str]:
    """The `count` fields of `line`; with sep ',' quoted fields may hold commas (CSV)."""
    text = line.rstrip("\r\n")
    # csv.reader is 4x slower than split, and unquoted lines (every ratings.csv line) split the same.
    fields = next(csv.reader([text]), []) if sep == "," and '"' in text else text.split(sep)
    if len(fields) != count:
        raise MovieLensError(f"{where}: expected {count} fields separated by {sep!r}, "
                             f"found {len(fields)} in {line.strip()!r}", "field_count")
    return fields


def _int(text: str, what: str, where: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise MovieLensError(f"{where}: {what} {text!r} is not an integer", "not_a_number") from None


def _rating(text: str, where: str, half_stars: bool) -> float:
    """A rating on the release's scale: 1..5 whole stars, or 0.5..5 in half stars."""
    try:
        value = float(text)
    except ValueError:
        raise MovieLensError(f"{where}: rating {text!r} is not a number", "not_a_number") from None
    low, steps = (0.5, 2) if half_stars else (1, 1)
    if not low <= value <= 5 or (value * steps) % 1:
        scale = "0.5..5 in half stars" if half_stars else "1..5 in whole stars"
        raise MovieLensError(f"{where}: rating {text.strip()} is outside {scale}", "out_of_range")
    return value


def genre_list(names: str) -> List[str]:
    """'Action|Children' -> the project's genre names (aliases mapped); ['unknown'] for none."""
    return [_GENRE_ALIASES.get(g, g) for g in names.split("|") if g] or ["unknown"]


def parse_year(release_date: str, title: str) -> int:
    """Year from a release date like '01-Jan-1995', else from a title like 'Heat (1995)'."""
    match = (re.search(r"(\d{4})$", release_date.strip())
             or re.search(r"\((\d{4})(?:[-–]\d{4})?\)\s*$", title))
    return int(match.group(1)) if match else 0


def _split_rating(line: str, where: str, sep: str, half_stars: bool) -> Rating:
    """'user<sep>movie<sep>rating<sep>timestamp' -> (user_id, movie_id, rating, timestamp)."""
    user_id, movie_id, rating, timestamp = _fields(line, sep, 4, where)
    _int(user_id, "user id", where)
    _int(movie_id, "movie id", where)
    return user_id, movie_id, _rating(rating, where, half_stars), _int(timestamp, "timestamp", where)


# One ratings line and its `where` -> (user_id, movie_id, rating, timestamp), per release.
parse_rating = functools.partial(_split_rating, sep="\t", half_stars=False)  # ml-100k's u.data
parse_1m_rating = functools.partial(_split_rating, sep="::", half_stars=False)  # ml-1m's ratings.dat
parse_10m_rating = functools.partial(_split_rating, sep="::", half_stars=True)  # ml-10m's ratings.dat
parse_csv_rating = functools.partial(_split_rating, sep=",", half_stars=True)  # 20m+: ratings.csv


# ml-100k
def parse_movie(line: str, where: str) -> Tuple[str, Movie]:
    """One u.item line -> (movie_id, Movie)."""
    fields = _fields(line, "|", 5 + len(GENRES), where)
    _int(fields[0], "movie id", where)
    flags = fields[5:]
    if any(flag not in ("0", "1") for flag in flags):
        raise MovieLensError(f"{where}: genre flags must be 0 or 1, found {flags}", "out_of_range")
    genres = [genre for genre, flag in zip(GENRES, flags, strict=True) if flag == "1"] or ["unknown"]
    return fields[0], Movie(fields[1], parse_year(fields[2], fields[1]), genres)


def parse_user(line: str, where: str) -> Tuple[str, User]:
    """One u.user line -> (user_id, User)."""
    user_id, age, gender, occupation, zip_code = _fields(line, "|", 5, where)
    _int(user_id, "user id", where)
    return user_id, User(_int(age, "age", where), gender, occupation, zip_code)


# ml-1m and ml-10m ('::'-separated .dat files); movies.csv shares their movies parser
def _split_movie(line: str, where: str, sep: str) -> Tuple[str, Movie]:
    """'id<sep>Title (year)<sep>Genre|Genre' -> (movie_id, Movie)."""
    movie_id, title, genres = _fields(line, sep, 3, where)
    _int(movie_id, "movie id", where)
    title = title.strip() if sep == "," else title  # movies.csv pads some titles; .dat titles are kept as is
    return movie_id, Movie(title, parse_year("", title), genre_list(genres))


parse_dat_movie = functools.partial(_split_movie, sep="::")  # ml-1m's and ml-10m's movies.dat
parse_csv_movie = functools.partial(_split_movie, sep=",")  # 20m+: movies.csv, titles with commas quoted


def parse_1m_user(line: str, where: str) -> Tuple[str, User]:
    """One ml-1m users.dat line 'id::gender::age code::occupation code::zip' -> (user_id, User)."""
    user_id, gender, age, occupation, zip_code = _fields(line, "::", 5, where)
    _int(user_id, "user id", where)
    age_code, job = _int(age, "age", where), _int(occupation, "occupation", where)
    if age_code not in AGE_GROUPS_1M or not 0 <= job < len(OCCUPATIONS_1M):
        raise MovieLensError(f"{where}: age code {age_code} or occupation code {job} is not one of "
                             f"{AGE_GROUPS_1M} / 0..{len(OCCUPATIONS_1M) - 1}", "out_of_range")
    return user_id, User(age_code, gender, OCCUPATIONS_1M[job], zip_code)


def parse_dat_tag(line: str, where: str) -> Tuple[str, str]:
    """One ml-10m tags.dat line 'user::movie::tag::timestamp' -> (movie_id, tag)."""
    fields = line.rstrip("\r\n").split("::")
    if len(fields) < 4:
        raise MovieLensError(f"{where}: expected 4 fields separated by '::', found {len(fields)}", "field_count")
    _int(fields[1], "movie id", where)
    return fields[1], "::".join(fields[2:-1])


# ml-20m, 25m, 32m, latest, latest-small (CSV with a header)
def parse_csv_tag(line: str, where: str) -> Tuple[str, str]:
    """One tags.csv line 'userId,movieId,tag,timestamp' -> (movie_id, tag)."""
    _, movie_id, tag, _ = _fields(line, ",", 4, where)
    _int(movie_id, "movie id", where)
    return movie_id, tag


class Release(NamedTuple):
    """One MovieLens file layout: file names, their parsers and encodings."""
    name: str
    ratings: str
    movies: str
    users: Optional[str]
    tags: Optional[str]  # read when present
    parse_rating: Callable[[str, str], Rating]
    parse_movie: Callable[[str, str], Tuple[str, Movie]]
    parse_user: Optional[Callable[[str, str], Tuple[str, User]]]
    parse_tag: Optional[Callable[[str, str], Tuple[str, str]]]
    encoding: str  # of movies, users and tags; ratings are ASCII (read as UTF-8)
    header: bool = False  # CSV files start with a header line


ML_100K = Release("ml-100k", "u.data", "u.item", "u.user", None, parse_rating, parse_movie, parse_user, None, "latin-1")
ML_1M = Release("ml-1m", "ratings.dat", "movies.dat", "users.dat", None, parse_1m_rating,
                parse_dat_movie, parse_1m_user, None, "latin-1")
ML_10M = Release("ml-10m", "ratings.dat", "movies.dat", None, "tags.dat", parse_10m_rating,
                 parse_dat_movie, None, parse_dat_tag, "utf-8/latin-1")
ML_CSV = Release("ml-20m+", "ratings.csv", "movies.csv", None, "tags.csv", parse_csv_rating,
                 parse_csv_movie, None, parse_csv_tag, "utf-8", header=True)


def detect_release(data_dir: str) -> Release:
    """The release whose files `data_dir` holds: u.data -> 100K, ratings.dat with users.dat
    -> 1M, ratings.dat alone -> 10M, ratings.csv -> 20M/25M/32M/latest."""
    def has(name: str) -> bool:
        return tf.io.gfile.exists(os.path.join(data_dir, name))

    release = (ML_100K if has("u.data") else ML_1M if has("ratings.dat") and has("users.dat")
               else ML_10M if has("ratings.dat") else ML_CSV if has("ratings.csv") else None)
    if release is None:
        raise MovieLensError(f"{data_dir}: no MovieLens ratings file (u.data, ratings.dat or "
                             "ratings.csv); point input_base at an unpacked MovieLens release", "missing")
    for name in (release.movies, release.users):
        if name and not has(name):
            raise MovieLensError(f"{os.path.join(data_dir, name)}: file not found; the {release.name} "
                                 f"release needs {release.ratings}, {release.movies}"
                                 f"{', ' + release.users if release.users else ''}", "missing")
    return release


def decode(raw: bytes, encoding: str, where: str) -> str:
    """Bytes of one line -> text; encoding 'utf-8/latin-1' tries UTF-8, then Latin-1."""
    for name in encoding.split("/"):
        try:
            return raw.decode(name)
        except UnicodeDecodeError:
            pass
    raise MovieLensError(f"{where}: bytes {raw.strip()[:60]!r} are not valid {encoding}", "undecodable")
