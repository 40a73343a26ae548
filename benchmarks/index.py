"""ScaNN against brute force on a synthetic catalogue: latency, recall@10, build time, memory.

    python -m benchmarks.index                                    # 1M items, default sweep
    python -m benchmarks.index --items 100000 --settings 316,20,100 --batches 4   # quick look

Items are clustered Gaussian vectors (1,000 unit-norm cluster centres plus noise 1.5 times
their norm, normalised: an item's cosine with its centre is about 0.55); queries are drawn
near random centres the same way, so a query's true top 10 is spread over its cluster and
its neighbours (at noise 1.0 ScaNN finds them far more easily, at 2.0 hardly at all).

Both indexes are the project's TFRS layers (tfrs.layers.factorized_top_k.BruteForce and
ScaNN, dot product, as in components/index_builder.py), each called through a tf.function
as a SavedModel serves it. All indexes are built first (build: wall time of `index()`, and
the process's extra resident memory at peak during the build and kept after it), then
timed side by side in --rounds rounds, each index in turn on its share of the queries, so
that other load on the machine falls on all of them alike. Latency: p50 and p99 over
--single one-query calls and --batches calls of --batch queries; recall@10 of each ScaNN
setting against brute force's exact top 10 on all the batched queries. The recommended
setting is the fastest (one-query p50) with recall@10 >= --recommend-recall (a margin over
the 0.95 target). Results: benchmarks/results/index.{json,png}.
"""
import argparse
import gc
import json
import os
import platform
import sys
import threading
import time

import numpy as np
import psutil

from models import metrics
from models.retrieval.constants import RetrievalConfig

HERE = os.path.dirname(os.path.abspath(__file__))

DEFAULT_SETTINGS = ["1000,1000,10",  # sqrt(n) leaves, every one searched
                    "1000,20,100", "1000,50,100", "1000,100,250", "1000,100,500",
                    "1000,200,500"]  # index_builder.scann_parameters' choice at 1M movies


def catalogue(items: int, queries: int, dim: int, clusters: int, spread: float, seed: int):
    """(items float32 [items, dim], queries float32 [queries, dim]), both unit-norm."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)

    def near_centres(n):
        out = np.empty((n, dim), np.float32)
        for start in range(0, n, 100_000):  # in chunks, to keep the peak small
            rows = slice(start, min(n, start + 100_000))
            size = rows.stop - rows.start
            out[rows] = centres[rng.integers(clusters, size=size)] + \
                spread / np.sqrt(dim) * rng.standard_normal((size, dim), dtype=np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    return near_centres(items), near_centres(queries)


class PeakMemory:
    """Context manager: the process's extra RSS in MiB, at peak (sampled) and at the end."""

    def __enter__(self):
        self.process = psutil.Process()
        self.base = self.peak = self.process.memory_info().rss
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self):
        while self.running:
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.005)

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()
        end = self.process.memory_info().rss
        self.peak_mib = (max(self.peak, end) - self.base) / 2**20
        self.kept_mib = (end - self.base) / 2**20


def build(layer, items: np.ndarray, batch: int, k: int) -> tuple:
    """Indexes items [n, dim] with `layer`; returns (build figures, warmed-up search fn)."""
    import tensorflow as tf

    gc.collect()
    with PeakMemory() as memory:
        start = time.perf_counter()
        layer.index(tf.constant(items))
        build_s = time.perf_counter() - start
    search = tf.function(lambda q: layer(q, k=k)[1], input_signature=[tf.TensorSpec([None, items.shape[1]])])
    for rows in (1, batch):
        search(items[:rows]).numpy()  # trace and warm up
    return {"build_s": round(build_s, 2), "build_peak_mib": round(memory.peak_mib),
            "index_mib": round(memory.kept_mib)}, search


def time_searches(searches: dict, queries: np.ndarray, batch: int, single: int, rounds: int) -> tuple:
    """Times every search fn in turn, round by round, so that other load on the machine falls
    on all of them alike; returns ({name: latency figures}, {name: top ids [queries, k]})."""
    singles = {name: [] for name in searches}
    batches = {name: [] for name in searches}
    tops = {name: [] for name in searches}
    starts = range(0, len(queries), batch)
    for r in range(rounds):
        for name, search in searches.items():
            for row in queries[r:single:rounds]:
                start = time.perf_counter()
                search(row[None, :]).numpy()
                singles[name].append(time.perf_counter() - start)
            for first in starts[r::rounds]:
                start = time.perf_counter()
                tops[name].append((first, search(queries[first:first + batch]).numpy()))
                batches[name].append(time.perf_counter() - start)
    ms = lambda seconds, q: round(1000 * float(np.percentile(seconds, q)), 3)  # noqa: E731
    figures = {name: {"p50_ms": ms(singles[name], 50), "p99_ms": ms(singles[name], 99),
                      "batch_p50_ms": ms(batches[name], 50), "batch_p99_ms": ms(batches[name], 99)}
               for name in searches}
    return figures, {name: np.concatenate([top for _, top in sorted(tops[name], key=lambda t: t[0])])
                     for name in searches}


def plot(result: dict, path: str) -> None:
    """Recall@10 against p50 latency (single query, batch) for the sweep and brute force."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    config, brute = result["config"], result["bruteforce"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    for ax, key, label in ((axes[0], "p50_ms", "one query"), (axes[1], "batch_p50_ms", f"batch of {config['batch']}")):
        ax.fill_between([1e-3, brute[key] / 10], 0.95, 1.005, color="tab:green", alpha=0.12,
                        label="target: >= 10x faster than brute force, recall@10 >= 0.95")
        for i, point in enumerate(result["sweep"]):
            chosen = point["setting"] == result["scann"]["setting"]
            ax.scatter(point[key], point["recall@10"], color="tab:red" if chosen else "tab:blue", zorder=3)
            ax.annotate(point["setting"], (point[key], point["recall@10"]), fontsize=7,
                        xytext=(5, 2 if i % 2 else -9), textcoords="offset points")  # neighbours apart
        ax.scatter([brute[key]], [1.0], color="black", marker="s", zorder=3,
                   label=f"brute force ({brute[key]:.1f} ms)")
        ax.set_xscale("log")
        ax.set_xlim(min(p[key] for p in result["sweep"]) / 2, brute[key] * 3)
        ax.set_xlabel(f"latency p50, {label} (ms, log scale)")
        ax.legend(loc="center right", fontsize=7)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylim(min(0.9, min(p["recall@10"] for p in result["sweep"]) - 0.02), 1.005)
    axes[0].set_ylabel("recall@10 against exact")
    fig.suptitle(f"ScaNN (leaves, leaves searched, reordered; red: recommended) vs brute force: "
                 f"{config['items']:,} items x {config['dim']}, {config['cpus']} CPUs", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1_000_000, help="catalogue size")
    parser.add_argument("--dim", type=int, default=RetrievalConfig.embedding_dim, help="embedding size")
    parser.add_argument("--clusters", type=int, default=1000, help="Gaussian clusters of items")
    parser.add_argument("--spread", type=float, default=1.5,
                        help="noise norm relative to the unit cluster centre (higher = harder)")
    parser.add_argument("--k", type=int, default=10, help="neighbours retrieved (recall@k)")
    parser.add_argument("--batch", type=int, default=64, help="queries per batched call")
    parser.add_argument("--batches", type=int, default=16,
                        help="batched calls timed; their queries also measure recall")
    parser.add_argument("--single", type=int, default=200, help="single-query calls timed")
    parser.add_argument("--settings", nargs="+", default=DEFAULT_SETTINGS,
                        help="ScaNN settings 'leaves,leaves_searched,reordering_candidates'")
    parser.add_argument("--rounds", type=int, default=5,
                        help="timing rounds; each times every index on its share of the queries")
    parser.add_argument("--min-recall", type=float, default=0.95, help="the target's recall@k")
    parser.add_argument("--recommend-recall", type=float, default=0.97,
                        help="recall@k the recommended setting needs (a margin over the target)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=os.path.join(HERE, "results"), help="directory for index.json/.png")
    parser.add_argument("--plot-only", action="store_true", help="redraw index.png from index.json")
    args = parser.parse_args()
    if args.plot_only:
        with open(os.path.join(args.out, "index.json")) as f:
            return plot(json.load(f), os.path.join(args.out, "index.png"))

    import tensorflow_recommenders as tfrs

    items, queries = catalogue(args.items, args.batch * args.batches, args.dim, args.clusters,
                               args.spread, args.seed)
    layers = {"bruteforce": tfrs.layers.factorized_top_k.BruteForce(k=args.k)}
    for setting in args.settings:
        leaves, searched, reorder = (int(v) for v in setting.split(","))
        layers[setting] = tfrs.layers.factorized_top_k.ScaNN(
            k=args.k, num_leaves=leaves, num_leaves_to_search=searched, num_reordering_candidates=reorder)
    builds, searches = {}, {}
    for name, layer in layers.items():  # every index stays in memory: timed side by side below
        builds[name], searches[name] = build(layer, items, args.batch, args.k)
        print("built", name, builds[name], flush=True)
    latency, tops = time_searches(searches, queries, args.batch, args.single, args.rounds)
    brute = {**latency["bruteforce"], **builds["bruteforce"], "recall@10": 1.0}
    sweep = []
    for setting in args.settings:
        leaves, searched, reorder = (int(v) for v in setting.split(","))
        figures = latency[setting]
        sweep.append({"setting": setting, "num_leaves": leaves, "num_leaves_to_search": searched,
                      "num_reordering_candidates": reorder, **figures, **builds[setting],
                      "recall@10": round(metrics.recall_vs_exact(tops[setting], tops["bruteforce"]), 4),
                      "speedup_p50": round(brute["p50_ms"] / figures["p50_ms"], 1),
                      "speedup_batch_p50": round(brute["batch_p50_ms"] / figures["batch_p50_ms"], 1)})
        print("scann", sweep[-1], flush=True)
    print("bruteforce", brute, flush=True)
    good = [p for p in sweep if p["recall@10"] >= args.recommend_recall]
    best = min(good, key=lambda p: p["p50_ms"]) if good else max(sweep, key=lambda p: p["recall@10"])
    result = {"config": {"items": args.items, "dim": args.dim, "clusters": args.clusters,
                         "spread": args.spread, "k": args.k, "batch": args.batch,
                         "queries": len(queries), "single_queries": args.single,
                         "rounds": args.rounds, "seed": args.seed,
                         "cpus": os.cpu_count(), "machine": platform.processor() or platform.machine(),
                         "date": time.strftime("%Y-%m-%d", time.gmtime()),
                         "command": " ".join(["python -m benchmarks.index"] + sys.argv[1:])},
              "bruteforce": brute, "scann": best, "sweep": sweep,
              "target": {"speedup_p50": 10, "recall@10": args.min_recall,
                         "met": best["recall@10"] >= args.min_recall and best["speedup_p50"] >= 10}}
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "index.json"), "w") as f:
        json.dump(result, f, indent=1)
    plot(result, os.path.join(args.out, "index.png"))
    print(f"recommended {best['setting']}: p50 {best['p50_ms']} ms vs {brute['p50_ms']} ms "
          f"({best['speedup_p50']}x), recall@10 {best['recall@10']}; target met: {result['target']['met']}")


if __name__ == "__main__":
    main()
