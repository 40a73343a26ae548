"""The whole system, top to bottom: MovieLens -> TFX pipeline -> gRPC serving -> client.

    python demo.py                                   # downloads ml-100k once
    python demo.py --data-dir /path/to/ml-100k --users 196 186 22   # --verbose: print the logs, not to demo.log
"""
import argparse
import contextlib
import os
import time
import warnings

from pipeline import data, local_runner


def main() -> None:
    parser = local_runner.arguments("Run the MovieLens recommender end to end.")
    parser.add_argument("--users", nargs="+", default=["196", "186", "22"], help="users to recommend for")
    parser.add_argument("-k", type=int, default=10, help="recommendations per user")
    parser.add_argument("--verbose", action="store_true", help="print every log line instead of writing "
                        "them to <output-dir>/demo.log")
    args = parser.parse_args()
    start = time.monotonic()
    output = os.path.abspath(args.output_dir)
    log = os.path.join(output, "demo.log")
    if not args.verbose:  # before TensorFlow loads: its C++ logs write to file descriptor 2 too
        os.makedirs(output, exist_ok=True)
        os.dup2(os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), 2)
        print(f"Logs: {log} (--verbose prints them here)")
    warnings.filterwarnings("ignore", category=FutureWarning)  # google-cloud's Python EOL notices
    try:
        serving_dir, config = run(args)
    except BaseException as error:
        if not args.verbose:
            with open(log, errors="replace") as f:
                tail = "".join(f.readlines()[-20:])
            print(f"Failed: {type(error).__name__}: {error}\nThe last lines of {log} (the traceback "
                  f"follows there):\n{tail}", flush=True)
        raise
    print(f"Pipeline artifacts: {output}/pipeline\nML Metadata:        {output}/metadata.db\n"
          f"Pushed models:      {serving_dir}\nRun report:         {output}/report.html\n"
          f"Server config:      {os.path.abspath(config)}\n"
          + ("" if args.verbose else f"Logs:               {log}\n")
          + f"Total wall time:    {time.monotonic() - start:.0f} s")


def run(args: argparse.Namespace) -> tuple:
    """Runs the pipeline, serves its models and prints the users' recommendations; returns
    the pushed models' directory and the server's config file."""
    data_dir = data.resolve(args.data_dir, args.tfds_data_dir)
    print(f"[1/3] Running the TFX pipeline on {data_dir} ...", flush=True)
    serving_dir = local_runner.run(data_dir, args.output_dir, args.epochs, cache=args.cache)

    from serving.client import RecommenderClient, format_table
    from serving.config import write_config
    from serving.server import running_server

    config = write_config(os.path.join(args.output_dir, "models.config"), {
        name: os.path.join("serving", name) for name in ("retrieval", "retrieval_bruteforce", "ranking")})
    with running_server(config) as target, contextlib.closing(RecommenderClient(target)) as client:
        print(f"[2/3] Serving {serving_dir} on {target} ...", flush=True)
        client.wait_until_ready(timeout=180)  # the server's gRPC health service: SERVING once loaded
        print("[3/3] Recommendations (retrieval top-200 re-ranked by the ranking model; movies the user "
              "already rated are excluded):\n")
        for user in args.users:
            print(format_table(user, client.recommend(user, args.k)), "\n")
    return serving_dir, config


if __name__ == "__main__":
    main()
