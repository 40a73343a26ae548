"""Unit tests for components/movielens.py: the ml-100k parsers and the rating join."""
import pytest

from components.movielens import (MovieLensError, Movie, User, parse_movie, parse_rating,
                                  parse_user, parse_year, read_table, to_example)

# 19 genre flags: unknown, Action, Adventure, Animation, Children's, Comedy, Crime, ...
TOY_STORY = ("1|Toy Story (1995)|01-Jan-1995||http://us.imdb.com/M/title-exact?Toy%20Story%20(1995)"
             "|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n")
NO_FLAGS = "7|Nameless (1990)|||http://x|" + "|".join(["0"] * 19) + "\n"
WHERE = "u.data:42"


# parse_year

def test_parse_year_release_date_wins_over_title():
    assert parse_year("01-Jan-1995", "Heat (1990)") == 1995


def test_parse_year_falls_back_to_title():
    assert parse_year("", "Heat (1995)") == 1995


def test_parse_year_zero_when_neither_gives_one():
    assert parse_year("", "Heat") == 0


# parse_movie

def test_parse_movie_genre_flags_become_names():
    movie_id, movie = parse_movie(TOY_STORY, "u.item:1")
    assert movie_id == "1"
    assert movie == Movie("Toy Story (1995)", 1995, ["Animation", "Children's", "Comedy"])


def test_parse_movie_last_flag_is_western():
    line = "3|Shane|||u|" + "|".join(["0"] * 18 + ["1"])
    assert parse_movie(line, "u.item:3")[1].genres == ["Western"]


def test_parse_movie_without_flags_is_unknown():
    _, movie = parse_movie(NO_FLAGS, "u.item:7")
    assert movie == Movie("Nameless (1990)", 1990, ["unknown"])


def test_parse_movie_wrong_field_count_names_location():
    with pytest.raises(MovieLensError, match=r"u\.item:5: expected 24 fields.*found 23"):
        parse_movie(TOY_STORY.replace("|0\n", "\n"), "u.item:5")


def test_parse_movie_bad_flag_names_location():
    bad = TOY_STORY.replace("|1|1|1|", "|1|2|1|")
    with pytest.raises(MovieLensError, match=r"u\.item:6: genre flags must be 0 or 1"):
        parse_movie(bad, "u.item:6")


def test_parse_movie_non_integer_id_names_location():
    with pytest.raises(MovieLensError, match=r"u\.item:8: movie id 'x1' is not an integer"):
        parse_movie("x" + TOY_STORY, "u.item:8")


# parse_user

def test_parse_user():
    assert parse_user("1|24|M|technician|85711\n", "u.user:1") == ("1", User(24, "M", "technician"))


def test_parse_user_non_integer_age_names_location():
    with pytest.raises(MovieLensError, match=r"u\.user:2: age 'old' is not an integer"):
        parse_user("2|old|F|other|94043", "u.user:2")


def test_parse_user_wrong_field_count_names_location():
    with pytest.raises(MovieLensError, match=r"u\.user:3: expected 5 fields.*found 4"):
        parse_user("3|23|M|writer", "u.user:3")


# parse_rating

def test_parse_rating():
    assert parse_rating("196\t242\t3\t881250949\n", WHERE) == ("196", "242", 3.0, 881250949)


def test_parse_rating_value_is_float():
    assert isinstance(parse_rating("1\t2\t5\t0", WHERE)[2], float)


def test_parse_rating_wrong_field_count():
    with pytest.raises(MovieLensError) as error:
        parse_rating("196\t242\t3", WHERE)
    assert WHERE in str(error.value) and "expected 4 fields" in str(error.value)


def test_parse_rating_non_numeric_rating():
    with pytest.raises(MovieLensError) as error:
        parse_rating("196\t242\tgood\t881250949", WHERE)
    assert WHERE in str(error.value) and "rating 'good' is not an integer" in str(error.value)


@pytest.mark.parametrize("value", [0, 6])
def test_parse_rating_out_of_range(value):
    with pytest.raises(MovieLensError) as error:
        parse_rating(f"196\t242\t{value}\t881250949", WHERE)
    assert WHERE in str(error.value) and f"rating {value} is outside 1..5" in str(error.value)


# read_table

def test_read_table_decodes_latin1(tmp_path):
    path = tmp_path / "u.item"
    line = "9|Café Society (1995)|01-Jan-1995||http://x|" + "|".join(["0"] * 8 + ["1"] + ["0"] * 10)
    path.write_bytes((TOY_STORY + line + "\n").encode("latin-1"))
    assert "é".encode("latin-1") in path.read_bytes() and "é".encode("utf-8") not in path.read_bytes()
    table = read_table(str(path), parse_movie)
    assert table == {"1": Movie("Toy Story (1995)", 1995, ["Animation", "Children's", "Comedy"]),
                     "9": Movie("Café Society (1995)", 1995, ["Drama"])}


def test_read_table_skips_blank_lines_and_numbers_lines(tmp_path):
    path = tmp_path / "u.user"
    path.write_text("1|24|M|technician|85711\n\n3|x|F|other|1\n")
    with pytest.raises(MovieLensError, match=r"u\.user:3: age 'x'"):
        read_table(str(path), parse_user)


def test_read_table_empty_file_raises(tmp_path):
    path = tmp_path / "u.user"
    path.write_bytes(b"")
    with pytest.raises(MovieLensError, match="file is empty"):
        read_table(str(path), parse_user)


def test_read_table_missing_file_raises(tmp_path):
    with pytest.raises(MovieLensError, match="file not found"):
        read_table(str(tmp_path / "u.item"), parse_movie)


# to_example

USERS = {"196": User(49, "M", "writer")}
MOVIES = {"242": Movie("Kolya (1996)", 1997, ["Comedy", "Drama"])}


def test_to_example_joins_user_and_movie():
    feature = to_example(("196", "242", 3.0, 881250949), USERS, MOVIES).features.feature
    assert set(feature) == {"user_id", "movie_id", "rating", "timestamp", "user_age", "user_gender",
                            "user_occupation", "movie_title", "movie_year", "movie_genres"}
    assert feature["user_id"].bytes_list.value == [b"196"]
    assert feature["movie_id"].bytes_list.value == [b"242"]
    assert feature["rating"].float_list.value == [3.0]
    assert feature["timestamp"].int64_list.value == [881250949]
    assert feature["user_age"].int64_list.value == [49]
    assert feature["user_gender"].bytes_list.value == [b"M"]
    assert feature["user_occupation"].bytes_list.value == [b"writer"]
    assert feature["movie_title"].bytes_list.value == [b"Kolya (1996)"]
    assert feature["movie_year"].int64_list.value == [1997]
    assert feature["movie_genres"].bytes_list.value == [b"Comedy", b"Drama"]


def test_to_example_encodes_title_as_utf8():
    movies = {"9": Movie("Café", 0, ["unknown"])}
    feature = to_example(("196", "9", 4.0, 0), USERS, movies).features.feature
    assert feature["movie_title"].bytes_list.value == [b"Caf\xc3\xa9"]


def test_to_example_unknown_movie_raises():
    with pytest.raises(MovieLensError, match="movie 999, which is not in the catalogue"):
        to_example(("196", "999", 3.0, 0), USERS, MOVIES)


def test_to_example_unknown_user_raises():
    with pytest.raises(MovieLensError, match="user 7, which is not in the catalogue"):
        to_example(("7", "242", 3.0, 0), USERS, MOVIES)
