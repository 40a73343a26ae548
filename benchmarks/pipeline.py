"""Wall time of the pipeline on ML-100K and of each stage, from ML Metadata.

    python -m benchmarks.pipeline --until Transform --runs 3   # the data stages (results/ingest.json)
    python -m benchmarks.pipeline --output-dir /tmp/bench      # the whole demo (results/pipeline.json)

`--until C`: each run is `python -m pipeline.local_runner --until C` in a child process
and a fresh output directory (TFX start-up included); prints the medians.

Whole mode: `demo.py` (the pipeline, the server, the recommendations) in a child process
three times over one output directory: `fresh` (nothing cached), `cached` (unchanged: every
component's outputs from ML Metadata's cache) and `ranking_change` (RANKING_CONFIG changed
by `--ranking-change`: only the ranking branch runs again). Each run's wall time and each
stage's (the component's execution in ML Metadata; `cached` lists the reused ones), and
the evaluators' figures of the fresh run; what each run printed: <output-dir>.<run>.out.
"""
import argparse
import glob
import json
import os
import statistics
import sys
import tempfile
import time

from benchmarks.scale import HERE, run_sampled, stages
from pipeline import data


def measure(command: list, metadata_path: str, log: str = os.devnull) -> dict:
    """Runs `command` (its output to `log`); its wall time, peak memory and the last pipeline run's stages."""
    start = time.time()
    with open(log, "w") as out:
        code, samples = run_sampled(command, stdout=out)
    wall = time.time() - start
    if code != 0:
        raise SystemExit(f"{' '.join(command)} failed with exit code {code}")
    runs = stages(metadata_path)
    return {"wall_seconds": wall, "peak_rss_gib": max(rss for _, rss in samples) / 2**30,
            "stages": {name: round(end - begin, 1) for name, begin, end, _ in runs},
            "cached": sorted(name for name, _, _, cached in runs if cached)}


def until(data_dir: str, component: str, runs: int) -> dict:
    """Medians of `runs` runs up to `component`, each in a fresh output directory."""
    results = []
    for i in range(runs):
        with tempfile.TemporaryDirectory() as workdir:
            output_dir = os.path.join(workdir, "run")
            results.append(measure([sys.executable, "-m", "pipeline.local_runner", "--data-dir", data_dir,
                                    "--output-dir", output_dir, "--until", component],
                                   os.path.join(output_dir, "metadata.db")))
        print(f"run {i + 1}: {results[-1]['wall_seconds']:.0f} s", results[-1]["stages"], flush=True)
    median = lambda values: round(statistics.median(values), 1)  # noqa: E731
    return {"runs": results, "median_wall_seconds": median([r["wall_seconds"] for r in results]),
            "median_stage_seconds": {name: median([r["stages"][name] for r in results])
                                     for name in results[0]["stages"]}}


def evaluations(output_dir: str) -> dict:
    """The first run's RetrievalEvaluator and RankingEvaluator figures (metrics.json)."""
    found = {}
    for name in ("RetrievalEvaluator", "RankingEvaluator"):
        paths = sorted(glob.glob(os.path.join(output_dir, "pipeline", name, "evaluation", "*", "metrics.json")),
                       key=lambda path: int(path.split(os.sep)[-2]))
        found[name] = json.load(open(paths[0])) if paths else None
    return found


def whole(data_dir: str, output_dir: str, ranking_change: dict) -> dict:
    """The demo fresh, cached and after a ranking-only change, over one output directory."""
    result = {"ranking_change": ranking_change}
    for name, change in (("fresh", {}), ("cached", {}), ("ranking_change", ranking_change)):
        command = [sys.executable, "-m", "benchmarks.pipeline", "--demo", json.dumps(change), "--data-dir", data_dir,
                   "--output-dir", output_dir]
        result[name] = measure(command, os.path.join(output_dir, "metadata.db"), f"{output_dir}.{name}.out")
        print(f"{name}: {result[name]['wall_seconds']:.0f} s", result[name]["stages"],
              f"cached: {result[name]['cached']}", flush=True)
    result["evaluations"] = evaluations(output_dir)
    return result


def demo(change: dict, args: list) -> None:
    """demo.py's main() with configs.RANKING_CONFIG updated by `change` (in this process)."""
    import demo as demo_script  # the child runs in the project's root
    from pipeline import configs

    configs.RANKING_CONFIG.update(change)
    sys.argv = ["demo.py", *args]
    demo_script.main()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", help="ml-100k directory (default: $MOVIELENS_DIR or a cached download)")
    parser.add_argument("--until", help="time the runs up to this component (e.g. Transform) instead of the demo")
    parser.add_argument("--runs", type=int, default=3, help="with --until: repetitions; medians are reported")
    parser.add_argument("--output-dir", help="whole mode: the demo's output directory (must not exist)")
    parser.add_argument("--ranking-change", default='{"holdout_seed": 8}',
                        help="whole mode: the RANKING_CONFIG change of the third run, as JSON")
    parser.add_argument("--demo", help=argparse.SUPPRESS)  # a child: demo.py with this RANKING_CONFIG change
    args, rest = parser.parse_known_args()
    if args.demo is not None:
        return demo(json.loads(args.demo), [*rest, "--data-dir", args.data_dir, "--output-dir", args.output_dir])
    data_dir = data.resolve(args.data_dir)
    if args.until:
        result, name = until(data_dir, args.until, args.runs), "ingest" if args.until == "Transform" else args.until
    else:
        if not args.output_dir or os.path.exists(args.output_dir):
            parser.error("whole mode needs an --output-dir that does not exist yet (the first run starts fresh)")
        result, name = whole(data_dir, os.path.abspath(args.output_dir), json.loads(args.ranking_change)), "pipeline"
    with open(os.path.join(HERE, "results", f"{name}.json"), "w") as f:
        json.dump(result, f, indent=1)
    print(f"Wrote benchmarks/results/{name}.json")


if __name__ == "__main__":
    main()
