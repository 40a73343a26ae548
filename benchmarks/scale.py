"""How the pipeline's cost grows with data: wall time and peak memory per stage, and
training throughput, on synthetic ml-100k-format data of growing size.

    python -m benchmarks.scale --sizes 100000 1000000 5000000
    python -m benchmarks.scale --sizes 100000 --epochs 1 --workdir /tmp/scale   # quick look

Each size runs `python -m pipeline.local_runner` in a child process while this one
samples the resident memory of the child and its workers every half second. Stage
times come from ML Metadata (each execution's start and end), so they include TFX's
own per-component overhead. Results: benchmarks/results/scale.json and scale.png.
"""
import argparse
import json
import os
import subprocess
import sys
import threading
import time

import psutil

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def shape(ratings: int) -> tuple:
    """(users, movies) for a data set of `ratings`: 1% as many users, 10K to 100K movies."""
    return max(ratings // 100, 100), min(max(ratings // 50, 10_000), 100_000)


def run_sampled(command: list, interval: float = 0.5, stdout=subprocess.DEVNULL) -> tuple:
    """Runs `command` (its output to `stdout`, a file or DEVNULL); returns (exit code,
    [(unix time, rss bytes of the process tree)])."""
    samples = []
    process = psutil.Popen(command, cwd=ROOT, stdout=stdout, stderr=subprocess.DEVNULL)

    def sample():
        while process.poll() is None:
            try:
                tree = [process] + process.children(recursive=True)
                samples.append((time.time(), sum(p.memory_info().rss for p in tree)))
            except psutil.Error:
                pass
            time.sleep(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    code = process.wait()
    sampler.join()
    return code, samples


def stages(metadata_path: str, run: int = -1) -> list:
    """[(component id, start, end, cached)] of the executions of one pipeline run (default: the
    last), times in seconds since the epoch, from ML Metadata; `cached`: outputs reused."""
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2

    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = metadata_path
    store = metadata_store.MetadataStore(config)
    runs = sorted(store.get_contexts_by_type("pipeline_run"), key=lambda context: context.create_time_since_epoch)
    result = []
    for execution in store.get_executions_by_context(runs[run].id):
        node = [c.name for c in store.get_contexts_by_execution(execution.id) if c.type == "node"]
        result.append((node[0].split(".")[-1], execution.create_time_since_epoch / 1000,
                       execution.last_update_time_since_epoch / 1000,
                       execution.last_known_state == metadata_store_pb2.Execution.CACHED))
    return sorted(result, key=lambda stage: stage[1])


def train_stats(output_dir: str, trainer: str) -> dict:
    import glob

    paths = glob.glob(os.path.join(output_dir, "pipeline", trainer, "model_run", "*", "train_stats.json"))
    return json.load(open(paths[0])) if paths else {}


def measure(ratings: int, workdir: str, epochs: int, beam_args: list) -> dict:
    from benchmarks import synthetic

    users, movies = shape(ratings)
    data_dir = synthetic.write(os.path.join(workdir, f"data-{ratings}"), users, movies, ratings)
    output_dir = os.path.join(workdir, f"run-{ratings}")
    command = [sys.executable, "-m", "pipeline.local_runner", "--data-dir", str(data_dir),
               "--output-dir", output_dir, "--epochs", str(epochs)] + [f"--beam-arg={a}" for a in beam_args]
    start = time.time()
    code, samples = run_sampled(command)
    total = time.time() - start
    if code != 0:
        raise RuntimeError(f"pipeline failed on {ratings} ratings (exit {code}); run `{' '.join(command)}`")
    per_stage = {name: {"seconds": end - begin,  # a stage shorter than a sample: its nearest samples
                        "peak_rss_mb": max((rss for t, rss in samples if begin - 1 <= t <= end + 1), default=0) / 2**20}
                 for name, begin, end, _ in stages(os.path.join(output_dir, "metadata.db"))}
    return {"ratings": ratings, "users": users, "movies": movies, "epochs": epochs,
            "total_seconds": total, "peak_rss_mb": max(rss for _, rss in samples) / 2**20,
            "stages": per_stage,
            "training_examples_per_second": {
                trainer: train_stats(output_dir, trainer).get("examples_per_second")
                for trainer in ("RetrievalTrainer", "RankingTrainer")}}


def plot(results: list, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [r["ratings"] for r in results]
    names = [name for name in results[-1]["stages"] if results[-1]["stages"][name]["seconds"] >= 1]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for name in names:
        left.plot(sizes, [r["stages"].get(name, {}).get("seconds", 0) for r in results], "o-", label=name)
        right.plot(sizes, [r["stages"].get(name, {}).get("peak_rss_mb", 0) for r in results], "o-", label=name)
    left.plot(sizes, [r["total_seconds"] for r in results], "k--", label="whole run")
    right.plot(sizes, [r["peak_rss_mb"] for r in results], "k--", label="whole run")
    for axis, label in ((left, "wall time (s)"), (right, "peak RSS during the stage (MiB)")):
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("ratings")
        axis.set_ylabel(label)
        axis.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=8)
    fig.suptitle("Pipeline cost by stage on a 2-core machine (LocalDagRunner, DirectRunner)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def table(results: list) -> str:
    """The README's table: seconds (peak MiB) of the main stages per size."""
    names = [name for name in results[-1]["stages"] if results[-1]["stages"][name]["seconds"] >= 1]
    rows = ["| ratings (users, movies) | " + " | ".join(names) + " | whole run | train ex/s retrieval, ranking |",
            "| --- " * (len(names) + 3) + "|"]
    for r in results:
        cells = [f"{r['stages'][n]['seconds']:.0f} s ({r['stages'][n]['peak_rss_mb'] / 1024:.1f} GiB)"
                 if n in r["stages"] else "" for n in names]
        speed = r["training_examples_per_second"]
        rows.append(f"| {r['ratings']:,} ({r['users']:,}, {r['movies']:,}) | " + " | ".join(cells)
                    + f" | {r['total_seconds'] / 60:.1f} min ({r['peak_rss_mb'] / 1024:.1f} GiB) | "
                    f"{speed['RetrievalTrainer']:,.0f}, {speed['RankingTrainer']:,.0f} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description="Measure pipeline cost against data size.")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 5_000_000],
                        help="numbers of ratings to run")
    parser.add_argument("--epochs", type=int, default=1, help="training epochs of both models")
    parser.add_argument("--workdir", default="/tmp/recsys-scale", help="where data and runs go")
    parser.add_argument("--beam-arg", action="append", default=[], dest="beam_args",
                        help="Beam pipeline option passed to the runner, repeatable")
    parser.add_argument("--out", default=os.path.join(HERE, "results"), help="results directory")
    args = parser.parse_args()
    path = os.path.join(args.out, "scale.json")
    runs = {r["ratings"]: r for r in json.load(open(path))["runs"]} if os.path.exists(path) else {}
    for ratings in args.sizes:  # each size replaces an earlier run of that size
        print(f"{ratings:,} ratings ...", flush=True)
        runs[ratings] = measure(ratings, args.workdir, args.epochs, args.beam_args)
        print(json.dumps(runs[ratings], indent=1), flush=True)
        results = [runs[size] for size in sorted(runs)]
        os.makedirs(args.out, exist_ok=True)
        with open(path, "w") as f:
            json.dump({"machine": f"{os.cpu_count()} cores", "runs": results}, f, indent=1)
        plot(results, os.path.join(args.out, "scale.png"))
    print(table(results))


if __name__ == "__main__":
    main()
