"""--enable_batching's two candidates on the ranking signature, in one process, no gRPC:
each of `--threads` threads calls it `--calls` times with one user's 100 candidates; (a)
each call alone, (b) serving/batching.py's Batcher (merges concurrent calls in Python),
(c) TensorFlow's batching kernel (`tf.nondifferentiable_batch_function`, what TF
Serving's batching runs), alternating over `--rounds`; calls per second and p50 / p99.

    python benchmarks/batching.py --model outputs/serving/ranking/<version>
"""
import argparse
import json
import os
import sys
import threading
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a ranking SavedModel version directory")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--calls", type=int, default=40, help="per thread and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--timeout-micros", type=int, default=500)
    args = parser.parse_args()
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(2)
    from serving.batching import Batcher
    loaded = tf.saved_model.load(args.model)  # kept: its signatures reference its variables
    function = loaded.signatures["serving_default"]

    def call(arrays):
        return {k: v.numpy() for k, v in function(user_id=tf.constant(arrays["user_id"]),
                                                  movie_id=tf.constant(arrays["movie_id"])).items()}
    batcher = Batcher(args.timeout_micros / 1e6)
    names = sorted(function.structured_outputs)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)] * 2)
    @tf.nondifferentiable_batch_function(num_batch_threads=1, max_batch_size=10_000,
                                         batch_timeout_micros=args.timeout_micros, allowed_batch_sizes=None)
    def batched(user_id, movie_id):
        out = function(user_id=user_id, movie_id=movie_id)
        return [out[name] for name in names]
    ways = {"alone": call, "batcher": lambda a: batcher.run("ranking", call, a),
            "tf_batch_function": lambda a: dict(zip(names, (v.numpy() for v in batched(
                tf.constant(a["user_id"]), tf.constant(a["movie_id"]))), strict=True))}
    requests = [{"user_id": np.array([str(u).encode()] * 100, object),
                 "movie_id": np.array([str(m).encode() for m in range(u, u + 100)], object)} for u in range(1, 50)]
    for way in ways.values():
        way(requests[0])
    times = {name: [] for name in ways}
    walls = dict.fromkeys(ways, 0.0)
    for _ in range(args.rounds):
        for name, way in ways.items():
            def worker(t, name=name, way=way):
                for i in range(args.calls):
                    start = time.perf_counter()
                    way(requests[(t * args.calls + i) % len(requests)])
                    times[name].append(time.perf_counter() - start)
            threads = [threading.Thread(target=worker, args=(t,)) for t in range(args.threads)]
            start = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            walls[name] += time.perf_counter() - start
    out = {name: {"calls_per_s": round(len(t) / walls[name], 1), "p50_ms": round(1000 * np.median(t), 2),
                  "p99_ms": round(1000 * np.percentile(t, 99), 2)} for name, t in times.items()}
    print(json.dumps({**out, "load_average_1min": os.getloadavg()[0], "command": " ".join(sys.argv)}, indent=1))


if __name__ == "__main__":
    main()
