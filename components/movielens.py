"""MovieLensExampleGen: any MovieLens release (components/movielens_formats.py; TFDS's: movielens_tfds.py) into
tf.Examples, one per rating joined with its user and movie, split train/eval.

A Beam pipeline: ratings are read in numbered chunks, parsed in parallel, grouped by user and joined with the movies
and users tables (side inputs). Deterministic splits (README.md, "Releases, splits and bad rows"): random (a seeded
hash), temporal (a global timestamp quantile) or leave_last_n (each user's last n ratings by (timestamp, movie_id)).

Bad rows: with max_bad_row_fraction 0 the first raises a MovieLensError naming file, line and problem; above 0 they
are counted per reason into <examples uri>/bad_rows.json, failing past that fraction. A title under several ids is
merged into the smallest (components/movielens_tables.py), a user's later rating kept; counts go to
<examples uri>/duplicates.json and the examples' duplicate_* custom properties."""
import hashlib
import itertools
import json
import logging
import os
from typing import Any, Dict, Iterator, List, Optional, Tuple

import apache_beam as beam
import tensorflow as tf
from apache_beam.pvalue import AsDict, AsSingleton, TaggedOutput
from tfx.components.example_gen.base_example_gen_executor import BaseExampleGenExecutor
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, channel, standard_artifacts, standard_component_specs
from tfx.types.component_spec import ExecutionParameter
from tfx.utils import io_utils

from components.movielens_formats import UNKNOWN_USER, MovieLensError, Rating, decode, detect_release
from components.movielens_tables import Tables, id_order, read_lines, read_tables, to_example

SPLITS = ("random", "temporal", "leave_last_n")
CHUNK_LINES = 20_000  # ratings lines per parallel parsing task
NUM_QUANTILES = 1001  # temporal cut's resolution: 0.1% of the ratings
EXAMPLES_PER_REASON = 5  # bad rows quoted per reason in bad_rows.json
DUPLICATES_LOGGED = 20  # merged ids named in the log line (duplicates.json has them all)


def is_eval_random(rating: Rating, seed: int, eval_fraction: float) -> bool:
    """Whether the random split puts `rating` in eval: a seeded hash against the ratio."""
    user_id, movie_id, _, timestamp = rating
    digest = hashlib.sha256(f"{seed}|{user_id}|{movie_id}|{timestamp}".encode()).digest()
    return int.from_bytes(digest[:8], "big") < eval_fraction * 2.0 ** 64


def temporal_cut(quantiles: List[int], eval_fraction: float) -> int:
    """The timestamp from which ratings are eval, from ApproximateQuantiles' output (all
    values, sorted, when there were fewer than NUM_QUANTILES)."""
    if not quantiles:
        return 0
    n = len(quantiles)
    index = n - round(eval_fraction * n) if n < NUM_QUANTILES else round((1 - eval_fraction) * (n - 1))
    return quantiles[index] if index < n else quantiles[-1] + 1


def eval_flags(ratings: List[Rating], options: Dict[str, Any], cut: int) -> List[bool]:
    """Which of one user's ratings go to eval under options["split"] (see the module docstring)."""
    if options["split"] == "random":
        return [is_eval_random(r, options["split_seed"], options["eval_fraction"]) for r in ratings]
    if options["split"] == "temporal":
        return [r[3] >= cut for r in ratings]
    n = options["leave_last_n"]
    order = sorted(range(len(ratings)), key=lambda i: (ratings[i][3], ratings[i][1]))
    last = set(order[-n:]) if len(ratings) > n else set()
    return [i in last for i in range(len(ratings))]


def read_chunks(path: str, header: bool) -> Iterator[tuple]:
    """Yields (number of the first line, [raw lines]) of CHUNK_LINES lines each."""
    with tf.io.gfile.GFile(path, "rb") as f:
        lines = itertools.islice(enumerate(f, start=1), int(header), None)  # past a header line
        while chunk := list(itertools.islice(lines, CHUNK_LINES)):
            yield chunk[0][0], [raw for _, raw in chunk]


def _parse_chunk(chunk: tuple, path: str, tables: Tables, strict: bool):
    """(first line, lines) -> (user_id, (rating, line, movie id in the file)), the rating's movie
    id remapped through `tables.aliases`; bad rows tagged, and the row and remapped counts."""
    first, lines = chunk
    release, rows, remapped = tables.release, 0, 0
    for number, raw in enumerate(lines, start=first):
        if not raw.strip():
            continue
        rows += 1
        where = f"{path}:{number}"
        try:
            rating = release.parse_rating(decode(raw, "utf-8", where), where)
            if tables.users is not None and rating[0] not in tables.users:
                raise MovieLensError(f"{where}: rating by user {rating[0]}, who is not in {release.users}",
                                     "unknown_user")
            if rating[1] not in tables.movies and rating[1] not in tables.aliases:
                raise MovieLensError(f"{where}: rating of movie {rating[1]}, which is not in {release.movies}",
                                     "unknown_movie")
        except MovieLensError as error:
            if strict:
                raise
            yield TaggedOutput("bad", (error.reason, (number, str(error))))
            continue
        movie_id = tables.aliases.get(rating[1], rating[1])
        remapped += movie_id != rating[1]
        yield rating[0], ((rating[0], movie_id, rating[2], rating[3]), number, rating[1])
    yield TaggedOutput("counts", ("rows", rows))
    yield TaggedOutput("counts", ("remapped", remapped))


def _split_user(user_rows: tuple, cut: int, path: str, tables: Tables, options: Dict[str, Any], strict: bool):
    """(user_id, [(rating, line, movie id in the file)]) -> ('train' | 'eval', tf.Example);
    duplicates tagged 'bad', the count of ratings collapsed into another id tagged 'counts'."""
    user_id, rows = user_rows
    first_line, latest = {}, {}
    for rating, number, file_id in sorted(rows, key=lambda row: row[1]):
        if file_id in first_line:
            message = (f"{path}:{number}: user {user_id} rated movie {file_id} again "
                       f"(first at line {first_line[file_id]}); remove one of the two rows")
            if strict:
                raise MovieLensError(message, "duplicate")
            yield TaggedOutput("bad", ("duplicate", (number, message)))
            continue
        first_line[file_id] = number
        # Two ids of one title: the later rating wins; on a tie, the one of the kept id.
        rank = (rating[3], file_id == rating[1])
        if rating[1] not in latest or rank > latest[rating[1]][0]:
            latest[rating[1]] = (rank, rating)
    if len(first_line) > len(latest):
        yield TaggedOutput("counts", ("collapsed", len(first_line) - len(latest)))
    kept = [rating for _, rating in latest.values()]
    user = tables.users[user_id] if tables.users is not None else UNKNOWN_USER
    for rating, is_eval in zip(kept, eval_flags(kept, options, cut), strict=True):
        yield TaggedOutput("eval" if is_eval else "train", to_example(rating, user, tables.movies[rating[1]]))


def report_bad_rows(path: str, rows: int, counts: Dict[str, int], firsts: Dict[str, List[Tuple[int, str]]],
                    max_fraction: float, report_path: Optional[str]) -> None:
    """Logs and writes the bad-row counts per reason (with the first few (line, message) of each);
    raises MovieLensError past `max_fraction`."""
    count = sum(counts.values())
    reasons = {reason: {"count": n, "examples": [message for _, message in firsts[reason]]}
               for reason, n in sorted(counts.items())}
    report = {"file": path, "rows": rows, "bad_rows": count, "max_bad_row_fraction": max_fraction, "reasons": reasons}
    if report_path:
        io_utils.write_string_file(report_path, json.dumps(report, indent=1))
    per_reason = ", ".join(f"{reason} {n}" for reason, n in sorted(counts.items()))
    logging.info("MovieLensExampleGen: %d of %d rows of %s bad%s", count, rows, path,
                 f" ({per_reason})" if count else "")
    if count > max_fraction * rows:
        first_each = "; ".join(entry["examples"][0] for entry in reasons.values())
        raise MovieLensError(
            f"{path}: {count} of {rows} rows are bad ({count / max(rows, 1):.2%}), over the allowed "
            f"max_bad_row_fraction={max_fraction} ({per_reason}). First of each: {first_each}. Fix the "
            f"file or raise MAX_BAD_ROW_FRACTION in pipeline/configs.py.", "too_many_bad_rows")


def report_duplicates(path: str, aliases: Dict[str, str], remapped: int, collapsed: int,
                      report_path: Optional[str]) -> None:
    """Logs and writes (unless `report_path` is None) the merged ids ({merged: kept} `aliases`)
    and the ratings remapped to a kept id or collapsed (their user rated another id of the title)."""
    report = {"file": path, "titles_merged": len(set(aliases.values())), "ids_merged": len(aliases),
              "ratings_remapped": remapped, "ratings_collapsed": collapsed,
              "aliases": dict(sorted(aliases.items(), key=lambda item: id_order(item[0])))}
    if report_path:
        io_utils.write_string_file(report_path, json.dumps(report, indent=1))
    if aliases:
        pairs = [f"{merged}->{kept}" for merged, kept in report["aliases"].items()]
        more = f", ... {len(pairs) - DUPLICATES_LOGGED} more" if len(pairs) > DUPLICATES_LOGGED else ""
        logging.info("MovieLensExampleGen: merged %d duplicate titles of %s (ids %s%s): %d ratings remapped, "
                     "%d collapsed", report["titles_merged"], path, ", ".join(pairs[:DUPLICATES_LOGGED]), more,
                     remapped, collapsed)


def generate_splits(pipeline: beam.Pipeline, data_dir: str, options: Dict[str, Any], report_path: Optional[str] = None,
                    duplicates_path: Optional[str] = None) -> Dict[str, beam.PCollection]:
    """The train and eval tf.Examples of the release in `data_dir`, as Beam PCollections;
    bad rows reported to `report_path`, duplicate titles to `duplicates_path`."""
    tables = read_tables(data_dir)
    release = tables.release
    path = os.path.join(data_dir, release.ratings)
    reader = read_chunks
    if release.name.startswith("tfds:"):  # a prepared TFDS dataset: components/movielens_tfds.py
        from components.movielens_tfds import read_chunks as reader
    elif next(read_lines(path, "utf-8/latin-1", release.header), None) is None:  # Latin-1 decodes any byte
        raise MovieLensError(f"{path}: file is empty (no ratings); is the download complete?", "empty")
    max_fraction = options["max_bad_row_fraction"]
    strict = max_fraction <= 0
    parsed = (pipeline
              | "RatingsFile" >> beam.Create([path])
              | "ReadChunks" >> beam.FlatMap(reader, release.header)
              | "Spread" >> beam.Reshuffle()
              | "Parse" >> beam.FlatMap(_parse_chunk, path, tables, strict)
              .with_outputs("bad", "counts", main="ratings"))
    cut = 0
    if options["split"] == "temporal":
        cut = AsSingleton(parsed.ratings
                          | "Timestamps" >> beam.Map(lambda row: row[1][0][3])
                          | "Quantiles" >> beam.transforms.stats.ApproximateQuantiles.Globally(NUM_QUANTILES)
                          | "Cut" >> beam.Map(temporal_cut, options["eval_fraction"]))
    split = (parsed.ratings
             | "ByUser" >> beam.GroupByKey()
             | "Split" >> beam.FlatMap(_split_user, cut, path, tables, options, strict)
             .with_outputs("bad", "counts", "train", "eval"))
    bad = (parsed.bad, split.bad) | "AllBad" >> beam.Flatten()  # (reason, (line, message))
    counts = bad | "CountBad" >> beam.combiners.Count.PerKey()
    firsts = bad | "FirstBad" >> beam.combiners.Top.SmallestPerKey(EXAMPLES_PER_REASON)
    totals = (parsed.counts, split.counts) | "AllCounts" >> beam.Flatten() | "Sum" >> beam.CombinePerKey(sum)

    def report(_, totals: dict, counts: dict, firsts: dict) -> None:
        report_duplicates(os.path.join(data_dir, release.movies), tables.aliases, totals.get("remapped", 0),
                          totals.get("collapsed", 0), duplicates_path)
        report_bad_rows(path, totals.get("rows", 0), counts, firsts, max_fraction, report_path)

    _ = (pipeline | "Once" >> beam.Create([None])
         | "Report" >> beam.Map(report, AsDict(totals), AsDict(counts), AsDict(firsts)))
    return {"train": split.train, "eval": split.eval}


def file_sha256(directory: str, names: List[str]) -> Dict[str, str]:
    """{name: sha256 hex digest} of the files `names` in `directory` that exist."""
    digests = {}
    for name in (n for n in names if tf.io.gfile.exists(os.path.join(directory, n))):
        digest = hashlib.sha256()
        with tf.io.gfile.GFile(os.path.join(directory, name), "rb") as f:
            while block := f.read(1 << 24):
                digest.update(block)
        digests[name] = digest.hexdigest()
    return digests


class Executor(BaseExampleGenExecutor):
    """Splits by its own `split` parameter instead of output_config's hash buckets; writes
    bad_rows.json and duplicates.json beside the splits."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        raise NotImplementedError("MovieLensExampleGen overrides GenerateExamplesByBeam")

    def GenerateExamplesByBeam(self, pipeline, exec_properties: Dict[str, Any]):
        return generate_splits(pipeline, exec_properties["input_base"], exec_properties, *self._reports)

    def Do(self, input_dict, output_dict, exec_properties: Dict[str, Any]) -> None:
        examples = artifact_utils.get_single_instance(output_dict[standard_component_specs.EXAMPLES_KEY])
        self._reports = [os.path.join(examples.uri, name) for name in ("bad_rows.json", "duplicates.json")]
        super().Do(input_dict, output_dict, exec_properties)
        duplicates = json.loads(io_utils.read_string_file(self._reports[1]))
        for key in ("titles_merged", "ratings_remapped", "ratings_collapsed"):
            examples.set_int_custom_property(f"duplicate_{key}", duplicates[key])
        input_base = exec_properties["input_base"]
        if tf.io.gfile.exists(os.path.join(input_base, "dataset_info.json")):  # TFDS: input_base names the dataset
            return
        release = detect_release(input_base)  # the files read, for lineage (pipeline/lineage.py)
        examples.set_string_custom_property("release", release.name)
        examples.set_string_custom_property("input_sha256", json.dumps(file_sha256(input_base, [
            name for name in (release.ratings, release.movies, release.users, release.tags) if name])))


_OPTIONS = {"split": str, "eval_fraction": float, "split_seed": int, "leave_last_n": int, "max_bad_row_fraction": float}


class MovieLensExampleGenSpec(standard_component_specs.FileBasedExampleGenSpec):
    PARAMETERS = {**standard_component_specs.FileBasedExampleGenSpec.PARAMETERS,
                  **{key: ExecutionParameter(type=kind) for key, kind in _OPTIONS.items()}}


class MovieLensExampleGen(FileBasedExampleGen):
    """ExampleGen for a directory holding one MovieLens release; `examples` split train and eval."""

    SPEC_CLASS = MovieLensExampleGenSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

    def __init__(self, input_base: str, split: str = "random", eval_fraction: float = 0.2,
                 split_seed: int = 42, leave_last_n: int = 1, max_bad_row_fraction: float = 0.0):
        if split not in SPLITS:
            raise ValueError(f"split {split!r} is not one of {SPLITS}; set SPLIT in pipeline/configs.py")
        if not 0 <= eval_fraction < 1 or not 0 <= max_bad_row_fraction < 1 or leave_last_n < 1:
            raise ValueError("eval_fraction and max_bad_row_fraction must be in [0, 1), leave_last_n >= 1; "
                             f"got {eval_fraction}, {max_bad_row_fraction}, {leave_last_n}")
        names = [example_gen_pb2.SplitConfig.Split(name=name, hash_buckets=1) for name in ("train", "eval")]
        spec = MovieLensExampleGenSpec(
            input_base=input_base,
            # Every file of the release counts in the input's fingerprint.
            input_config=example_gen_pb2.Input(splits=[example_gen_pb2.Input.Split(name="all", pattern="*")]),
            # Split names only: the executor splits by `split`, not by these hash buckets.
            output_config=example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(splits=names)),
            output_data_format=example_gen_pb2.FORMAT_TF_EXAMPLE,
            output_file_format=example_gen_pb2.FORMAT_TFRECORDS_GZIP,
            examples=channel.Channel(type=standard_artifacts.Examples),
            split=split, eval_fraction=float(eval_fraction), split_seed=int(split_seed),
            leave_last_n=int(leave_last_n), max_bad_row_fraction=float(max_bad_row_fraction))
        base_beam_component.BaseBeamComponent.__init__(self, spec=spec)
