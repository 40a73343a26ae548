"""The heaviest retrieval request: 1,000 rows of one user with a long history, through each
pushed retrieval model's `retrieve` signature in this process; time and peak memory.

    .venv/bin/python -m benchmarks.heavy_request --serving-dir outputs/serving --user 405

ML-100K's user 405 rated 737 movies, the most of any user.
"""
import argparse
import glob
import os
import resource
import time

import scann  # noqa: F401  the ScaNN model needs its ops
import tensorflow as tf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--serving-dir", default="outputs/serving", help="where the pipeline pushed the models")
    parser.add_argument("--user", default="405", help="the user every row asks for")
    parser.add_argument("--rows", type=int, default=1000, help="rows in the request")
    parser.add_argument("--exclude", type=int, default=100, help="exclusions per row")
    args = parser.parse_args()
    for name in ("retrieval_bruteforce", "retrieval"):
        path = sorted(glob.glob(os.path.join(args.serving_dir, name, "*")), key=lambda p: int(os.path.basename(p)))
        retrieve = tf.saved_model.load(path[-1]).signatures["retrieve"]
        retrieve(user_id=tf.constant([args.user]), exclude=tf.zeros([1, 0], tf.string), k=tf.constant(100))
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        times = []
        for _ in range(3):
            start = time.perf_counter()
            retrieve(user_id=tf.constant([args.user] * args.rows), exclude=tf.fill([args.rows, args.exclude], "50"),
                     k=tf.constant(100))
            times.append(time.perf_counter() - start)
        grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
        print(f"{name}: {args.rows} rows of user {args.user}, {args.exclude} exclusions each: median "
              f"{sorted(times)[1]:.2f} s ({', '.join(f'{t:.2f}' for t in times)}); peak RSS +{grown:.0f} MB "
              "(a process-wide peak: the second model shows only what it adds over the first)")


if __name__ == "__main__":
    main()
