"""Unit tests for pipeline/data.py (finding or downloading ml-100k) and
benchmarks/synthetic.py (seeded synthetic ml-100k files)."""
import http.server
import io
import threading
import zipfile

import pytest

from benchmarks import synthetic
from components.movielens_formats import parse_movie, parse_rating, parse_user
from components.movielens_tables import read_table
from pipeline import data


def _ml100k(path):
    path.mkdir(parents=True, exist_ok=True)
    for name in ("u.data", "u.item", "u.user"):
        (path / name).write_text("")
    return path


# resolve / check_dir

def test_resolve_explicit_dir_returns_resolved_path(tmp_path, monkeypatch):
    _ml100k(tmp_path / "ml")
    monkeypatch.delenv("MOVIELENS_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert data.resolve("ml/../ml") == (tmp_path / "ml").resolve()


def test_resolve_explicit_dir_wins_over_env(tmp_path, monkeypatch):
    monkeypatch.setenv("MOVIELENS_DIR", str(tmp_path / "absent"))
    assert data.resolve(str(_ml100k(tmp_path / "ml"))) == (tmp_path / "ml").resolve()


def test_resolve_uses_env_when_no_dir_given(tmp_path, monkeypatch):
    monkeypatch.setenv("MOVIELENS_DIR", str(_ml100k(tmp_path / "from-env")))
    assert data.resolve() == (tmp_path / "from-env").resolve()


def test_check_dir_missing_item_exits_naming_it(tmp_path):
    ml = _ml100k(tmp_path / "ml")
    (ml / "u.item").unlink()
    with pytest.raises(SystemExit) as exit_info:
        data.check_dir(ml)
    assert "u.item: file not found" in str(exit_info.value.code)


# download

def test_download_offline_exits_with_advice(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(data, "URL", "http://127.0.0.1:9/ml-100k.zip")
    cache = tmp_path / "cache"
    with pytest.raises(SystemExit) as exit_info:
        data.download(cache)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "http://127.0.0.1:9/ml-100k.zip" in err
    assert "--data-dir /path/to/ml-100k" in err and "MOVIELENS_DIR=/path/to/ml-100k" in err
    assert list(cache.rglob("ml-100k*")) == []


def test_download_uses_cache_without_network(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "URL", "http://127.0.0.1:9/ml-100k.zip")  # would fail if fetched
    cached = _ml100k(tmp_path / "ml-100k")
    assert data.download(tmp_path) == cached


class _ZipServer:
    """Serves `body` for any GET on 127.0.0.1:<free port>, in a thread."""

    def __init__(self, body):
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/ml-100k.zip"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive()


def _zip(files):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return buffer.getvalue()


def test_download_rejects_files_failing_sha256(tmp_path, monkeypatch):
    body = _zip({"ml-100k/u.data": "1\t1\t5\t0\n", "ml-100k/u.item": "not the catalogue\n",
                 "ml-100k/u.user": "1|24|M|technician|85711\n"})
    cache = tmp_path / "cache"
    with _ZipServer(body) as server:
        monkeypatch.setattr(data, "URL", server.url)
        with pytest.raises(SystemExit) as exit_info:
            data.download(cache)
    assert "does not match its pinned sha256" in str(exit_info.value.code)
    assert list(cache.rglob("ml-100k*")) == []


# synthetic.write

def _synthetic(path):
    return synthetic.write(str(path), users=20, movies=30, ratings=200, seed=1)


def test_synthetic_same_seed_same_bytes(tmp_path):
    first, second = _synthetic(tmp_path / "a"), _synthetic(tmp_path / "b")
    for name in ("u.data", "u.item", "u.user"):
        assert (first / name).read_bytes() == (second / name).read_bytes()


def test_synthetic_different_seed_different_ratings(tmp_path):
    first = _synthetic(tmp_path / "a")
    second = synthetic.write(str(tmp_path / "b"), users=20, movies=30, ratings=200, seed=2)
    assert (first / "u.data").read_bytes() != (second / "u.data").read_bytes()


def test_synthetic_files_parse_and_join(tmp_path):
    out = _synthetic(tmp_path)
    users = read_table(str(out / "u.user"), parse_user)
    movies = read_table(str(out / "u.item"), parse_movie)
    assert sorted(users, key=int) == [str(n) for n in range(1, 21)]
    assert sorted(movies, key=int) == [str(n) for n in range(1, 31)]
    lines = (out / "u.data").read_text().splitlines()
    ratings = [parse_rating(line, f"u.data:{n}") for n, line in enumerate(lines, start=1)]
    assert len(ratings) == 200
    assert len({(user, movie) for user, movie, _, _ in ratings}) == 200
    for user, movie, _, _ in ratings:
        assert user in users and movie in movies
    assert all("unknown" not in movie.genres for movie in movies.values())
