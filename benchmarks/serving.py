"""Serving latency and throughput: the composing client against serving/server.py on loopback.

    python benchmarks/serving.py                               # the pushed ML-100K models
    python benchmarks/serving.py --requests 300 --concurrency 1 4 --retrieval retrieval_bruteforce
    python benchmarks/serving.py --baseline-root ../before --baseline-serving-dir ../before/outputs/serving

Starts one server per mode in child processes over <serving-dir>/{retrieval,ranking}
(`default`: the server's defaults; `tf_1_thread`: one TensorFlow thread per call, so
concurrent requests run side by side instead of fighting over TensorFlow's pools;
`processes_N`: that in N processes sharing the port; `baseline`: tf_1_thread served
by another checkout over its models, for before/after in one run), waits on their
health service, warms them up, then in `--rounds` rounds alternating between the modes
(so all share the machine's background load), for each concurrency runs that many
client threads (one RecommenderClient, with a connection of its own, each) asking for k=10 of 100 re-ranked
candidates for ML-100K users in turn, until `--requests` recommendations (over all
rounds) are done or `--max-seconds` pass. Each request's wall time is split into the
retrieval call, the ranking call (both round trips, server work included) and the
client's own work (building requests, parsing answers, sorting); the CPU time the
server's processes and this load generator used per recommendation is recorded too, and,
in this process, the median time of each Predict without gRPC, and of its TensorFlow
call alone (`in_process_ms`). Writes benchmarks/results/serving.json
and serving.png (latency histograms); the top-level concurrency_N figures are those of
the `--headline` mode, every mode's are under "modes".
"""
import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
from typing import Optional

import numpy as np
import psutil

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ONE_THREAD = ["--tensorflow_intra_op_parallelism", "1", "--tensorflow_inter_op_parallelism", "1"]
MODES = {"default": [], "tf_1_thread": ONE_THREAD,
         **{f"processes_{n}": ONE_THREAD + ["--processes", str(n)] for n in (2, 3, 4)}}
BASELINE = "baseline"  # tf_1_thread, served by the checkout at --baseline-root over --baseline-serving-dir


def run_load(target: str, concurrency: int, requests: int, max_seconds: float, users: list, args) -> list:
    """[(total, retrieval, ranking) seconds] of each recommendation, and the wall time."""
    from serving.client import RecommenderClient
    samples, lock = [], threading.Lock()
    stop_at = time.monotonic() + max_seconds
    counter = iter(range(requests))

    def worker():
        client = RecommenderClient(target, args.retrieval, args.ranking, timeout=10, own_connection=True)
        while time.monotonic() < stop_at:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            start = time.perf_counter()
            client.recommend(users[i % len(users)], k=args.k, candidates=args.candidates)
            total = time.perf_counter() - start
            with lock:
                samples.append((total, client.timings.get(args.retrieval, 0.0), client.timings.get(args.ranking, 0.0)))
        client.close()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return samples, time.perf_counter() - start


def cpu_seconds(pid: Optional[int] = None) -> float:
    """User + system CPU seconds a process (this one by default) has used, all threads; for a
    server, its child processes (--processes) too."""
    process = psutil.Process(pid)
    family = [process] + (process.children(recursive=True) if pid else [])
    return sum(p.cpu_times().user + p.cpu_times().system for p in family)


def wait_for_processes(pid: int, port: int, count: int, seconds: float = 300) -> None:
    """Until `count` processes of a server's tree listen on `port`: with --processes, the children
    load their models beside a parent already serving (their loading must not count as work)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        family = [psutil.Process(pid)] + psutil.Process(pid).children(recursive=True)
        if sum(any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in p.net_connections("tcp"))
               for p in family) >= count:
            return
        time.sleep(0.5)
    raise TimeoutError(f"{count} server processes not listening on {port} after {seconds} s")


def split(config: str, users: list, args, calls: int = 300) -> dict:
    """Median cost of each Predict in this process (one TensorFlow thread): the signature
    alone on ready tensors (TensorFlow), and the server's whole Predict without gRPC (the
    protos' conversion too), called in turn so that both see the same load; wall and CPU
    (this process) time. The rest of a round trip is gRPC and Python."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    from serving.config import read_config
    from serving.registry import ModelRegistry
    from serving.service import ModelServer
    from serving.tensors import from_proto, to_proto
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    server = ModelServer(ModelRegistry(read_config(config)))

    def request(model, signature, **inputs):
        out = predict_pb2.PredictRequest()
        out.model_spec.name, out.model_spec.signature_name = model, signature
        for key, value in inputs.items():
            to_proto(value, out.inputs[key])
        return out
    retrieve = [request(args.retrieval, "retrieve", user_id=np.array([u.encode()], object),
                        exclude=np.zeros([1, 0], object), k=np.array(args.candidates, np.int32)) for u in users[:50]]
    rank = [request(args.ranking, "serving_default", user_id=np.array(
        [r.inputs["user_id"].string_val[0]] * args.candidates, object), movie_id=np.array(
        server._predict(r).outputs["movie_ids"].string_val, object)) for r in retrieve]
    out = {}
    for name, requests in (("retrieval", retrieve), ("ranking", rank)):
        spec = requests[0].model_spec
        function = server.registry.servable(spec).signature(spec.signature_name)
        tensors = [{k: tf.constant(from_proto(v)) for k, v in r.inputs.items()} for r in requests]
        ways = {"tensorflow": lambda i: function(**tensors[i]),  # noqa: B023
                "predict_without_grpc": lambda i: server._predict(requests[i])}  # noqa: B023
        times = {way: [] for way in ways}
        for i in range(calls + 20):
            for way, call in ways.items():
                wall, cpu = time.perf_counter(), time.process_time()
                call(i % len(requests))
                times[way].append((time.perf_counter() - wall, time.process_time() - cpu))
        out[name] = {f"{way}_{kind}_ms": round(1000 * float(np.median([t[j] for t in ts[20:]])), 3)
                     for way, ts in times.items() for j, kind in enumerate(("wall", "cpu"))}
    return out


def summarize(samples: list, wall: float) -> dict:
    total, retrieval, ranking = (np.array(column) * 1000 for column in zip(*samples, strict=True))
    overhead = total - retrieval - ranking

    def pct(values):
        return {f"p{p}_ms": round(float(np.percentile(values, p)), 3) for p in (50, 95, 99)}
    return {**pct(total), "rps": round(len(samples) / wall, 1), "requests": len(samples),
            "wall_s": round(wall, 2), "retrieval": pct(retrieval), "ranking": pct(ranking),
            "client_overhead": pct(overhead)}


def plot(raw: dict, path: str) -> None:
    """One latency histogram per (mode, concurrency): {title: (summary, latencies in ms)}."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    columns = 2
    rows = (len(raw) + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(5 * columns, 3.2 * rows), squeeze=False)
    for axis, (title, (summary, totals)) in zip(axes.flat, raw.items(), strict=False):  # spare axes stay empty
        axis.hist(totals, bins=60, color="tab:blue")
        for p, style in (("p50_ms", "-"), ("p99_ms", "--")):
            axis.axvline(summary[p], color="black", linestyle=style, label=f"{p[:3]} {summary[p]:.1f} ms")
        axis.set(title=f"{title.replace('_', ' ')}: {summary['rps']:.0f} rec/s",
                 xlabel="latency of one recommendation (ms)", ylabel="requests")
        axis.legend()
    for axis in list(axes.flat)[len(raw):]:
        axis.axis("off")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description="Latency and throughput of recommendations over gRPC.")
    parser.add_argument("--serving-dir", default=os.path.join(ROOT, "outputs", "serving"),
                        help="pushed models: <dir>/<model>/<version>/")
    parser.add_argument("--retrieval", default="retrieval", help="retrieval model (retrieval = ScaNN, "
                        "retrieval_bruteforce)")
    parser.add_argument("--ranking", default="ranking", help="ranking model")
    parser.add_argument("--requests", type=int, default=1000, help="recommendations per concurrency level")
    parser.add_argument("--max-seconds", type=float, default=120, help="time cap per concurrency level")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8], help="client threads")
    parser.add_argument("-k", type=int, default=10, help="recommendations per request")
    parser.add_argument("--candidates", type=int, default=200, help="retrieved movies re-ranked (the client's default)")
    parser.add_argument("--workers", type=int, default=8, help="server request threads")
    parser.add_argument("--modes", nargs="+", default=["tf_1_thread", "processes_2", "processes_3"],
                        choices=list(MODES),
                        help="server configurations, alternated in rounds")
    parser.add_argument("--rounds", type=int, default=5, help="rounds alternating between the modes")
    parser.add_argument("--headline", default="tf_1_thread", help="mode whose figures lead serving.json")
    parser.add_argument("--output", default=os.path.join(HERE, "results", "serving"), help="path stem of .json/.png")
    parser.add_argument("--baseline-root", help="a checkout of the code before a change: adds mode "
                        f"{BASELINE!r}, its server (tf_1_thread) over --baseline-serving-dir")
    parser.add_argument("--baseline-serving-dir", help="the models the baseline serves (default: --serving-dir)")
    args = parser.parse_args()

    from serving import server as S
    from serving.client import RecommenderClient
    from serving.config import write_config
    missing = [m for m in (args.retrieval, args.ranking) if not os.path.isdir(os.path.join(args.serving_dir, m))]
    if missing:
        sys.exit(f"benchmarks/serving.py: no {missing} under {args.serving_dir}; run `make demo` to push models.")
    workdir = tempfile.mkdtemp(prefix="bench-serving-")
    configs = {serving_dir: write_config(os.path.join(workdir, f"models{i}.config"), {
        m: os.path.abspath(os.path.join(serving_dir, m)) for m in (args.retrieval, args.ranking)})
        for i, serving_dir in enumerate({args.serving_dir, args.baseline_serving_dir or args.serving_dir})}
    config = configs[args.serving_dir]
    users = [str(u) for u in range(1, 944)]  # ML-100K's users
    modes = args.modes + [BASELINE] * bool(args.baseline_root)
    load_before, servers, targets = os.getloadavg()[0], {}, {}
    try:
        for mode in modes:  # every server up at once, so rounds can alternate between them
            port = S.free_port()
            flags = ["--grpc_max_threads", str(args.workers)] + MODES.get(mode, ONE_THREAD)
            baseline = mode == BASELINE
            servers[mode] = S.spawn(configs[args.baseline_serving_dir or args.serving_dir] if baseline else config,
                                    port, *flags, cwd=args.baseline_root if baseline else None)
            targets[mode] = f"127.0.0.1:{port}"
        for mode, target in targets.items():
            flags = MODES.get(mode, [])
            wait_for_processes(servers[mode].pid, int(target.rsplit(":", 1)[1]),
                               int(flags[flags.index("--processes") + 1]) if "--processes" in flags else 1)
            client = RecommenderClient(target, args.retrieval, args.ranking)
            client.wait_until_ready(300)
            for user in users[:50]:  # warm-up: first calls trace and allocate
                client.recommend(user, args.k, args.candidates)
            client.close()
        runs = {(mode, c): ([], 0.0, 0.0, 0.0) for mode in modes for c in args.concurrency}
        for _ in range(args.rounds):  # alternate modes in rounds: both see the same background load
            for mode, concurrency in runs:
                cpu_before = cpu_seconds(servers[mode].pid), cpu_seconds()
                samples, wall = run_load(targets[mode], concurrency, args.requests // args.rounds,
                                         args.max_seconds / args.rounds, users, args)
                server_cpu, client_cpu = (cpu_seconds(servers[mode].pid) - cpu_before[0],
                                          cpu_seconds() - cpu_before[1])
                old = runs[mode, concurrency]
                runs[mode, concurrency] = (old[0] + samples, old[1] + wall, old[2] + server_cpu, old[3] + client_cpu)
    finally:
        for server in servers.values():
            server.terminate()
            server.wait(timeout=30)
    splits = {mode: split(configs[args.baseline_serving_dir or args.serving_dir] if mode == BASELINE else config,
                          users, args) for mode in sorted({BASELINE} & set(modes)) + ["tf_1_thread"]}
    print("in-process split", json.dumps(splits), flush=True)
    modes, raw = {mode: {} for mode in modes}, {}
    for (mode, concurrency), (samples, wall, server_cpu, client_cpu) in runs.items():
        name = f"concurrency_{concurrency}"
        modes[mode][name] = summarize(samples, wall)
        modes[mode][name]["cpu_ms_per_recommendation"] = {
            "server": round(1000 * server_cpu / len(samples), 3), "client": round(1000 * client_cpu / len(samples), 3)}
        modes[mode][name]["cpu_cores_used"] = round((server_cpu + client_cpu) / wall, 2)
        raw[f"{mode}, {name}"] = (modes[mode][name], [s[0] * 1000 for s in samples])
        print(mode, name, json.dumps(modes[mode][name]), flush=True)
    results = {**modes.get(args.headline, next(iter(modes.values()))), "modes": modes}
    results["in_process_ms"] = splits
    results["setup"] = {
        "headline_mode": args.headline, "rounds": args.rounds,
        "retrieval_model": args.retrieval, "ranking_model": args.ranking, "k": args.k,
        "candidates": args.candidates, "server_workers": args.workers, "cpus": os.cpu_count(),
        "load_average_1min_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "machine": platform.platform(), "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": "python " + " ".join(sys.argv)}
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output + ".json", "w") as f:
        json.dump(results, f, indent=2)
    plot(raw, args.output + ".png")
    print(f"Wrote {args.output}.json and {args.output}.png")


if __name__ == "__main__":
    main()
