"""Unit tests for components/movielens_formats.py and movielens_tables.py: release
detection, every release's parsers and tables on tiny hand-written fixtures, encodings,
and the tf.Example join."""
import pytest

from components.movielens_formats import (
    ML_1M,
    ML_10M,
    ML_100K,
    ML_CSV,
    UNKNOWN_USER,
    Movie,
    MovieLensError,
    User,
    detect_release,
    parse_1m_rating,
    parse_1m_user,
    parse_10m_rating,
    parse_csv_movie,
    parse_csv_rating,
    parse_dat_movie,
    parse_year,
)
from components.movielens_tables import read_table, read_tables, to_example

# 19 genre flags: unknown, Action, Adventure, Animation, Children's, Comedy, Crime, ...
TOY_STORY_100K = ("1|Toy Story (1995)|01-Jan-1995||http://us.imdb.com/M/title-exact?Toy%20Story%20(1995)"
                  "|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n")


def write(directory, files):
    for name, text in files.items():
        (directory / name).write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(directory)


def values(example):
    """{feature: list of values} of a tf.Example, bytes decoded."""
    out = {}
    for key, feature in example.features.feature.items():
        kind = feature.WhichOneof("kind")
        vals = list(getattr(feature, kind).value) if kind else []
        out[key] = [v.decode() if isinstance(v, bytes) else v for v in vals]
    return out


# parse_year

@pytest.mark.parametrize("date, title, year", [
    ("01-Jan-1995", "Heat (1990)", 1995),  # the release date wins
    ("", "Heat (1995)", 1995),
    ("", "Heat (1995) ", 1995),
    ("", "Band of Brothers (2001-2001)", 2001),
    ("", "Heat", 0),
    ("", "1984", 0),
])
def test_parse_year(date, title, year):
    assert parse_year(date, title) == year


# detect_release

@pytest.mark.parametrize("files, release", [
    ({"u.data": "", "u.item": "", "u.user": ""}, ML_100K),
    ({"ratings.dat": "", "movies.dat": "", "users.dat": ""}, ML_1M),
    ({"ratings.dat": "", "movies.dat": "", "tags.dat": ""}, ML_10M),
    ({"ratings.dat": "", "movies.dat": ""}, ML_10M),
    ({"ratings.csv": "", "movies.csv": "", "links.csv": ""}, ML_CSV),
])
def test_detect_release_from_files_present(tmp_path, files, release):
    assert detect_release(write(tmp_path, files)) == release


def test_detect_release_without_ratings_says_what_is_expected(tmp_path):
    with pytest.raises(MovieLensError, match=r"no MovieLens ratings file \(u\.data, ratings\.dat or ratings\.csv\)"):
        detect_release(write(tmp_path, {"README": "hi"}))


def test_detect_release_names_the_missing_movies_file(tmp_path):
    with pytest.raises(MovieLensError, match=r"movies\.csv: file not found; the ml-20m\+ release needs"):
        detect_release(write(tmp_path, {"ratings.csv": ""}))


# ml-100k

def test_100k_tables_field_by_field(tmp_path):
    data_dir = write(tmp_path, {"u.data": "196\t1\t3\t881250949\n", "u.item": TOY_STORY_100K,
                                "u.user": "196|49|M|writer|55105\n"})
    tables = read_tables(data_dir)
    assert tables.release == ML_100K
    assert tables.movies == {"1": Movie("Toy Story (1995)", 1995, ["Animation", "Children's", "Comedy"])}
    assert tables.users == {"196": User(49, "M", "writer", "55105")}


def test_100k_genre_flags_none_set_is_unknown(tmp_path):
    line = "7|Nameless (1990)|||http://x|" + "|".join(["0"] * 19) + "\n"
    movies = read_table(write(tmp_path, {"u.item": line}) + "/u.item", ML_100K.parse_movie)
    assert movies["7"] == Movie("Nameless (1990)", 1990, ["unknown"])


def test_100k_titles_are_latin1(tmp_path):
    line = "9|Café Society (1995)|01-Jan-1995||http://x|" + "|".join(["0"] * 8 + ["1"] + ["0"] * 10)
    path = write(tmp_path, {"u.item": line.encode("latin-1")}) + "/u.item"
    assert read_table(path, ML_100K.parse_movie)["9"] == Movie("Café Society (1995)", 1995, ["Drama"])


def test_100k_bad_genre_flag_names_location():
    with pytest.raises(MovieLensError, match=r"u\.item:6: genre flags must be 0 or 1"):
        ML_100K.parse_movie(TOY_STORY_100K.replace("|1|1|1|", "|1|2|1|"), "u.item:6")


def test_100k_rating_is_a_whole_star():
    assert ML_100K.parse_rating("196\t242\t3\t881250949\n", "u.data:1") == ("196", "242", 3.0, 881250949)
    with pytest.raises(MovieLensError, match=r"u\.data:1: rating 3\.5 is outside 1\.\.5 in whole stars"):
        ML_100K.parse_rating("196\t242\t3.5\t881250949\n", "u.data:1")


# ml-1m

ML_1M_FILES = {
    "ratings.dat": "1::1193::5::978300760\n2::2::3::978299026\n",
    "movies.dat": "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
                  "2::Jumanji (1995)::Adventure|Children's|Fantasy\n"
                  "3::Ça ira (1990)::Documentary\n".encode("latin-1"),
    "users.dat": "1::F::1::10::48067\n2::M::56::16::70072\n",
}


def test_1m_tables_field_by_field(tmp_path):
    tables = read_tables(write(tmp_path, ML_1M_FILES))
    assert tables.release == ML_1M
    assert tables.movies == {
        "1193": Movie("One Flew Over the Cuckoo's Nest (1975)", 1975, ["Drama"]),
        "2": Movie("Jumanji (1995)", 1995, ["Adventure", "Children's", "Fantasy"]),
        "3": Movie("Ça ira (1990)", 1990, ["Documentary"])}  # Latin-1 decoded
    # Age codes stay codes (each group's lower bound); occupation codes become names.
    assert tables.users == {"1": User(1, "F", "K-12 student", "48067"),
                            "2": User(56, "M", "self-employed", "70072")}


def test_1m_rating_line():
    assert parse_1m_rating("1::1193::5::978300760\n", "ratings.dat:1") == ("1", "1193", 5.0, 978300760)


@pytest.mark.parametrize("line, problem", [
    ("1::F::1::21::48067", "occupation code 21"),
    ("1::F::30::1::48067", "age code 30"),
    ("1::F::1::48067", "expected 5 fields"),
])
def test_1m_user_errors_name_location(line, problem):
    with pytest.raises(MovieLensError, match=rf"users\.dat:4: .*{problem}"):
        parse_1m_user(line, "users.dat:4")


# ml-10m

def test_10m_half_stars_tags_and_mixed_encodings(tmp_path):
    data_dir = write(tmp_path, {
        "ratings.dat": "1::122::4.5::838985046\n",
        "movies.dat": "122::Boomerang (1992)::Comedy|Romance\n".encode()
                      + "4::Amélie (2001)::Comedy\n".encode("utf-8")
                      + "5::Café (1999)::(no genres listed)\n".encode("latin-1"),
        "tags.dat": "15::122::dark hero::1215184630\n20::122::Dark Hero::1215184631\n"
                    "15::122::funny::1215184632\n15::4::paris::1215184633\n"})
    tables = read_tables(data_dir)
    assert tables.release == ML_10M and tables.users is None
    assert tables.movies == {
        "122": Movie("Boomerang (1992)", 1992, ["Comedy", "Romance"], ["dark hero", "funny"]),
        "4": Movie("Amélie (2001)", 2001, ["Comedy"], ["paris"]),
        "5": Movie("Café (1999)", 1999, ["unknown"], [])}
    assert parse_10m_rating("1::122::4.5::838985046", "ratings.dat:1") == ("1", "122", 4.5, 838985046)


def test_10m_dat_movie_wrong_field_count():
    with pytest.raises(MovieLensError, match=r"movies\.dat:2: expected 3 fields separated by '::'"):
        parse_dat_movie("122::Boomerang (1992)", "movies.dat:2")


# ml-20m / 25m / 32m / latest (CSV)

ML_CSV_FILES = {
    "ratings.csv": "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n",
    "movies.csv": 'movieId,title,genres\n1,Toy Story (1995),Adventure|Animation|Children|Comedy\n'
                  '11,"American President, The (1995)",Comedy|Drama|Romance\n'
                  '9,"Babylon 5",(no genres listed)\n'
                  '2,Amélie (Fabuleux destin d\'Amélie Poulain) (2001),IMAX\n',
    "tags.csv": 'userId,movieId,tag,timestamp\n2,11,"politics, us",1445714994\n3,11,Funny,1445714995\n'
                '4,11,politics, us,1445714996\n',
}


def test_csv_tables_field_by_field(tmp_path):
    files = dict(ML_CSV_FILES, **{"tags.csv": ML_CSV_FILES["tags.csv"].rsplit("4,11", 1)[0]})
    tables = read_tables(write(tmp_path, files))
    assert tables.release == ML_CSV and tables.users is None
    assert tables.movies == {
        "1": Movie("Toy Story (1995)", 1995, ["Adventure", "Animation", "Children's", "Comedy"]),
        "11": Movie("American President, The (1995)", 1995, ["Comedy", "Drama", "Romance"],
                    ["funny", "politics, us"]),
        "9": Movie("Babylon 5", 0, ["unknown"]),
        "2": Movie("Amélie (Fabuleux destin d'Amélie Poulain) (2001)", 2001, ["IMAX"])}


def test_csv_tags_file_is_optional(tmp_path):
    files = {name: text for name, text in ML_CSV_FILES.items() if name != "tags.csv"}
    assert read_tables(write(tmp_path, files)).movies["11"].tags == []


def test_csv_unquoted_comma_in_tag_is_a_field_count_error(tmp_path):
    with pytest.raises(MovieLensError, match=r"tags\.csv:4: expected 4 fields separated by ',', found 5"):
        read_tables(write(tmp_path, ML_CSV_FILES))


def test_csv_wrong_header_names_file_and_line(tmp_path):
    files = dict(ML_CSV_FILES, **{"movies.csv": "id,title,genres\n1,Heat (1995),Action\n"})
    with pytest.raises(MovieLensError, match=r"movies\.csv:1: expected the header 'movieId,title,genres'"):
        read_tables(write(tmp_path, files))


def test_csv_undecodable_bytes_name_file_and_line(tmp_path):
    files = dict(ML_CSV_FILES, **{"movies.csv": b"movieId,title,genres\n1,Heat (1995),Action\n"
                                                b"2,Caf\xe9 (1999),Drama\n"})
    with pytest.raises(MovieLensError, match=r"movies\.csv:3: bytes .* are not valid utf-8"):
        read_tables(write(tmp_path, files))


def test_csv_rating_half_stars_and_range():
    assert parse_csv_rating("1,1,0.5,964982703", "ratings.csv:2") == ("1", "1", 0.5, 964982703)
    with pytest.raises(MovieLensError, match=r"ratings\.csv:2: rating 0 is outside 0\.5\.\.5 in half stars"):
        parse_csv_rating("1,1,0,964982703", "ratings.csv:2")
    with pytest.raises(MovieLensError, match=r"ratings\.csv:2: rating 4\.25 is outside"):
        parse_csv_rating("1,1,4.25,964982703", "ratings.csv:2")


def test_csv_movie_quoted_title():
    assert parse_csv_movie('11,"Heat, The (1995)",Action', "movies.csv:2") == (
        "11", Movie("Heat, The (1995)", 1995, ["Action"]))


# read_table

def test_read_table_numbers_lines_across_blank_ones(tmp_path):
    path = write(tmp_path, {"u.user": "1|24|M|technician|85711\n\n3|x|F|other|1\n"}) + "/u.user"
    with pytest.raises(MovieLensError, match=r"u\.user:3: age 'x' is not an integer"):
        read_table(path, ML_100K.parse_user)


def test_read_table_duplicate_id_names_both_lines(tmp_path):
    path = write(tmp_path, {"u.user": "1|24|M|technician|85711\n2|3|F|a|1\n1|25|M|writer|1\n"}) + "/u.user"
    with pytest.raises(MovieLensError, match=r"u\.user:3: id 1 again, first at line 1"):
        read_table(path, ML_100K.parse_user)


def test_read_table_empty_file(tmp_path):
    with pytest.raises(MovieLensError, match=r"u\.user: file is empty"):
        read_table(write(tmp_path, {"u.user": "\n"}) + "/u.user", ML_100K.parse_user)


def test_read_table_missing_file(tmp_path):
    with pytest.raises(MovieLensError, match="file not found"):
        read_table(str(tmp_path / "u.item"), ML_100K.parse_movie)


# to_example

def test_to_example_joins_every_feature():
    movie = Movie("Kolya (1996)", 1997, ["Comedy", "Drama"], ["czech"])
    example = to_example(("196", "242", 3.0, 881250949), User(49, "M", "writer", "55105"), movie)
    assert values(example) == {
        "user_id": ["196"], "movie_id": ["242"], "rating": [3.0], "timestamp": [881250949],
        "user_age": [49], "user_gender": ["M"], "user_occupation": ["writer"], "user_zip": ["55105"],
        "movie_title": ["Kolya (1996)"], "movie_year": [1997], "movie_genres": ["Comedy", "Drama"],
        "movie_tags": ["czech"]}


def test_to_example_unknown_user_and_no_tags():
    example = to_example(("7", "9", 4.5, 0), UNKNOWN_USER, Movie("Café", 0, ["unknown"]))
    feature = example.features.feature
    assert values(example)["user_age"] == [0] and values(example)["user_gender"] == [""]
    assert values(example)["user_zip"] == [""] and values(example)["movie_tags"] == []
    assert feature["movie_title"].bytes_list.value == [b"Caf\xc3\xa9"]  # UTF-8 out
