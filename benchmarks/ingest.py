"""Wall time of the data stages on ML-100K: ExampleGen, the catalogue, statistics, schema,
validation, the data gate and Transform, TFX start-up included (issue target: < 3 min).

    python -m benchmarks.ingest --runs 3

Each run is `python -m pipeline.local_runner --until Transform` in a fresh child process
and a fresh output directory; stage times come from ML Metadata. Prints the medians and
writes benchmarks/results/ingest.json.
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time

from benchmarks.scale import HERE, run_sampled, stages
from pipeline import data


def measure(data_dir: str, workdir: str) -> dict:
    output_dir = os.path.join(workdir, "run")
    command = [sys.executable, "-m", "pipeline.local_runner", "--data-dir", data_dir,
               "--output-dir", output_dir, "--until", "Transform"]
    start = time.time()
    code, samples = run_sampled(command)
    wall = time.time() - start
    if code != 0:
        raise SystemExit(f"{' '.join(command)} failed with exit code {code}")
    return {"wall_seconds": wall, "peak_rss_gib": max(rss for _, rss in samples) / 2**30,
            "stages": {name: end - begin for name, begin, end in stages(os.path.join(output_dir, "metadata.db"))}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", help="ml-100k directory (default: $MOVIELENS_DIR or a cached download)")
    parser.add_argument("--runs", type=int, default=3, help="repetitions; medians are reported")
    args = parser.parse_args()
    data_dir = data.resolve(args.data_dir)
    runs = []
    for i in range(args.runs):
        with tempfile.TemporaryDirectory() as workdir:
            runs.append(measure(data_dir, workdir))
        print(f"run {i + 1}: {runs[-1]['wall_seconds']:.0f} s")
    median = lambda values: round(statistics.median(values), 1)  # noqa: E731
    result = {"runs": runs, "median_wall_seconds": median([r["wall_seconds"] for r in runs]),
              "median_stage_seconds": {name: median([r["stages"][name] for r in runs]) for name in runs[0]["stages"]}}
    with open(os.path.join(HERE, "results", "ingest.json"), "w") as f:
        json.dump(result, f, indent=1)
    print(f"median wall time {result['median_wall_seconds']} s;", result["median_stage_seconds"])


if __name__ == "__main__":
    main()
