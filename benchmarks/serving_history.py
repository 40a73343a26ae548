"""Cost of one recommendation against the user's history length, through the client.

    python benchmarks/serving_history.py build /tmp/hist/after            # the model, by this checkout's code
    python benchmarks/serving_history.py build /tmp/hist/before --code-root ../main
    python benchmarks/serving_history.py measure --ranking-dir outputs/serving/ranking \\
        --models before=/tmp/hist/before after=/tmp/hist/after

ML-100K has no user with 1,000 or 5,000 rated movies (nor 5,000 movies), so `build` makes
a synthetic retrieval model with IndexBuilder's `build_retrievers` (ScaNN, the served
kind): 8,000 movies with seeded random unit embeddings (dim 32), and for each history
length (10, 100, 1,000, 5,000) 5 users whose training history is that many random
movies. The users are named by ML-100K user ids, so the ranking model, the real pushed
one, ranks their candidates with its features of real users (its cost per pair does not
depend on the history's length: models/ranking/relations.py). `measure` serves each
model beside that ranking model (or DIR/ranking where there is one; one server each, one TensorFlow thread, as
benchmarks/serving.py's tf_1_thread), and asks for k=10 of 200 re-ranked candidates one
at a time, the lengths in turn, alternating between the models in rounds; p50 and p99
per length go to benchmarks/results/serving_history.{json,png} (the last model named
leads the JSON).
"""
import argparse
import json
import os
import sys
import tempfile
import time
import zlib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
LENGTHS = (10, 100, 1000, 5000)
USERS = {length: [str(100 * i + j + 1) for j in range(5)] for i, length in enumerate(LENGTHS)}  # ML-100K ids
MOVIES, DIM = 8000, 32


def unit(key: bytes) -> np.ndarray:
    vector = np.random.default_rng(zlib.crc32(key)).normal(size=DIM).astype(np.float32)
    return vector / np.linalg.norm(vector)


class Towers:
    """Stands in for the trained towers: a seeded random unit vector per id."""

    def embed_users(self, user_id):
        import tensorflow as tf
        return {"embeddings": tf.constant(np.stack([unit(b"u" + u) for u in user_id.numpy()]))}

    def embed_movies(self, **batch):
        import tensorflow as tf
        return {"embeddings": tf.constant(np.stack([unit(b"m" + m) for m in batch["movie_id"].numpy()]))}


def build(path: str, code_root: str) -> None:
    sys.path.insert(0, code_root)
    import tensorflow as tf

    from components.index_builder import build_retrievers
    ids = [str(m).encode() for m in range(1, MOVIES + 1)]
    movies = tf.data.Dataset.from_tensor_slices({"movie_id": ids, "movie_title": [b"Movie " + m for m in ids]})
    rng = np.random.default_rng(0)
    seen = {user.encode(): sorted(rng.choice(ids, length, replace=False).tolist())
            for length, users in USERS.items() for user in users}
    retriever = build_retrievers(Towers(), movies.batch(1024), seen, 200, {})["scann"]  # as many as served
    retriever.save(os.path.join(path, "retrieval", "1"), scann=True)
    print(f"Wrote {path}/retrieval/1 (code of {code_root})")


def measure(args) -> None:
    sys.path.insert(0, ROOT)
    from serving import server as S
    from serving.client import RecommenderClient
    from serving.config import write_config
    workdir, servers, clients = tempfile.mkdtemp(prefix="bench-history-"), [], {}
    load_before = os.getloadavg()[0]
    try:
        for name, path in (m.split("=", 1) for m in args.models):
            config = write_config(os.path.join(workdir, f"{name}.config"), {
                "retrieval": os.path.abspath(os.path.join(path, "retrieval")),
                "ranking": os.path.abspath(os.path.join(path, "ranking") if os.path.isdir(os.path.join(path, "ranking"))
                                           else args.ranking_dir)})
            port = S.free_port()
            servers.append(S.spawn(config, port, "--tensorflow_intra_op_parallelism", "1",
                                   "--tensorflow_inter_op_parallelism", "1"))
            clients[name] = RecommenderClient(f"127.0.0.1:{port}", timeout=30)
        for client in clients.values():
            client.wait_until_ready(300)
            for users in USERS.values():
                for user in users * 4:  # warm-up
                    client.recommend(user)
        times = {name: {length: [] for length in LENGTHS} for name in clients}
        for _ in range(args.rounds):
            for name, client in clients.items():
                for i in range(args.requests // args.rounds):
                    for length, users in USERS.items():
                        start = time.perf_counter()
                        client.recommend(users[i % len(users)])
                        times[name][length].append(1000 * (time.perf_counter() - start))
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=30)
    results = {name: {str(length): {"p50_ms": round(float(np.percentile(t, 50)), 3),
                                    "p99_ms": round(float(np.percentile(t, 99)), 3), "requests": len(t)}
                      for length, t in by_length.items()} for name, by_length in times.items()}
    out = {**results[list(clients)[-1]], "models": results, "setup": {
        "command": "python " + " ".join(sys.argv), "movies": MOVIES, "users_per_length": 5,
        "load_average_1min_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}}
    print(json.dumps(results, indent=1))
    with open(args.output + ".json", "w") as f:
        json.dump(out, f, indent=2)
    plot(results, args.output + ".png")
    print(f"Wrote {args.output}.json and .png")


def plot(results: dict, path: str) -> None:
    """p50 (solid) and p99 (dashed) against history length, one colour per model."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    figure, axis = plt.subplots(figsize=(6, 3.6))
    for i, (name, by_length) in enumerate(results.items()):
        for p, style in (("p50_ms", "-o"), ("p99_ms", "--o")):
            axis.plot(LENGTHS, [by_length[str(n)][p] for n in LENGTHS], style, color=f"C{i}", label=f"{name} {p[:3]}")
    axis.axhline(15, color="grey", linewidth=0.8, label="p99 target 15 ms")
    axis.set(xscale="log", xlabel="movies in the user's history", ylabel="ms per recommendation",
             title="One recommendation (retrieval top-100 -> ranking -> top-10)")
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="write a synthetic retrieval model to DIR/retrieval/1")
    b.add_argument("dir")
    b.add_argument("--code-root", default=ROOT, help="the checkout whose IndexBuilder builds it")
    m = sub.add_parser("measure", help="latency per history length")
    m.add_argument("--ranking-dir", help="a pushed ranking model's base path")
    m.add_argument("--models", nargs="+", required=True,
                   help="name=DIR of `build` (with DIR/ranking, that ranking model instead of --ranking-dir)")
    m.add_argument("--requests", type=int, default=200, help="recommendations per length and model")
    m.add_argument("--rounds", type=int, default=4)
    m.add_argument("--output", default=os.path.join(HERE, "results", "serving_history"))
    args = parser.parse_args()
    build(args.dir, os.path.abspath(args.code_root)) if args.command == "build" else measure(args)


if __name__ == "__main__":
    main()
