"""Finds MovieLens: a directory given by the user, $MOVIELENS_DIR, or a cached download of
the official GroupLens ml-100k archive (fetched once, with a progress bar, and checked
against pinned sha256 sums of its files); or TensorFlow Datasets' prepared MovieLens."""
import hashlib
import os
import shutil
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Optional

URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "movielens"
# sha256 of the files the pipeline reads, as GroupLens publishes them.
SHA256 = {
    "u.data": "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
    "u.item": "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701",
    "u.user": "f120e114da2e8cf314fd28f99417c94ae9ddf1cb6db8ce0e4b5995d40e90e62c",
}

OFFLINE_HELP = """\
Could not download MovieLens 100K from {url}
({error}).
The demo needs a MovieLens release, by default ml-100k. Either connect this
machine to the internet and run again (the archive is cached in {cache}), or
download and unzip ml-100k.zip elsewhere, copy the ml-100k directory here, and
pass it with --data-dir /path/to/ml-100k or MOVIELENS_DIR=/path/to/ml-100k."""

TFDS_HELP = """\
TensorFlow Datasets' {name}-ratings and -movies are not both prepared in {root}. Prepare them once
(a minute for 100k), then pass --tfds-data-dir {root} or set TFDS_DATA_DIR:
  .venv/bin/python -c "import tensorflow_datasets as tfds; [tfds.builder(f'{name}-{{t}}', \\
data_dir='{root}').download_and_prepare() for t in ('ratings', 'movies')]"
That downloads {url} once. Offline, first put
that zip (GroupLens' own: TFDS checks its sha256) into {root}/downloads/manual/, where it looks."""


def check_dir(path: Path) -> Path:
    """Returns `path` if it holds a MovieLens release's files, else exits saying what is missing."""
    from components.movielens_formats import MovieLensError, detect_release

    try:
        detect_release(str(path))
    except MovieLensError as error:
        sys.exit(str(error))
    return path.resolve()


def download(cache: Optional[Path] = None) -> Path:
    """Downloads and unpacks ml-100k into `cache` (default CACHE_DIR) once; returns the
    ml-100k directory. Only a copy whose files match SHA256 ever lands there."""
    cache = cache or CACHE_DIR
    target = cache / "ml-100k"
    if target.is_dir():
        return target
    from tqdm import tqdm

    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        archive = Path(tmp) / "ml-100k.zip"
        try:
            with urllib.request.urlopen(URL, timeout=30) as response, open(archive, "wb") as out:
                total = int(response.headers.get("Content-Length", 0)) or None
                with tqdm.wrapattr(out, "write", total=total, desc="ml-100k.zip", file=sys.stdout) as bar:
                    shutil.copyfileobj(response, bar)  # a progress bar in bytes
        except OSError as error:
            print(OFFLINE_HELP.format(url=URL, error=error, cache=cache), file=sys.stderr)
            sys.exit(2)
        try:
            shutil.unpack_archive(archive, tmp)
            for name, expected in SHA256.items():
                with open(Path(tmp) / "ml-100k" / name, "rb") as f:
                    if hashlib.file_digest(f, "sha256").hexdigest() != expected:
                        sys.exit(f"Downloaded {name} does not match its pinned sha256; not using it.")
        except (shutil.ReadError, FileNotFoundError) as error:
            sys.exit(f"Downloaded {URL} is not the ml-100k archive ({error}); not using it.")
        shutil.move(str(Path(tmp) / "ml-100k"), target)  # only a checked copy lands
    return target


def resolve(data_dir: Optional[str] = None, tfds_data_dir: Optional[str] = None) -> Path:
    """The MovieLens directory to use (any release): `data_dir`, else $MOVIELENS_DIR, else the
    ml-100k download; for tfds:movielens/<version>, its prepared TFDS ratings dataset's under
    `tfds_data_dir` (default $TFDS_DATA_DIR, else ~/tensorflow_datasets), or exit saying how to prepare it."""
    given = data_dir or os.environ.get("MOVIELENS_DIR")
    if not given or not given.startswith("tfds:"):
        return check_dir(Path(given)) if given else download()
    import tensorflow_datasets as tfds

    root = os.path.expanduser(tfds_data_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets")
    ratings, movies = (tfds.builder(f"{given[5:]}-{table}", data_dir=root) for table in ("ratings", "movies"))
    if not ratings.is_prepared() or not movies.is_prepared():
        sys.exit(TFDS_HELP.format(name=given[5:], root=root, url=ratings.builder_config.download_url))
    return Path(ratings.data_dir)
