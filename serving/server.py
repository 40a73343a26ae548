"""A TF-Serving-compatible gRPC server for the pushed SavedModels, ScaNN's included.

Serves TF Serving 2.16's PredictionService and ModelService (serving/service.py) and the gRPC health service over a
`model_config_list` file's models, swapping in new versions while serving (serving/registry.py).

    python -m serving.server --model_config_file serving/models.config --port 8500
"""
import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
from concurrent import futures
from pathlib import Path
from typing import Dict, Iterator, Optional, Tuple

import grpc
import tensorflow as tf
from google.protobuf import text_format
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

from serving.config import read_config
from serving.errors import ServableError
from serving.registry import ModelRegistry
from serving.service import RELOAD_FLAG, Admission, Limits, ModelServer

SPARE_THREADS = 4  # threads beyond inference's running and queued ones: health and status always get one
SERVING, NOT_SERVING = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING


def add_health_service(server: grpc.Server, registry: ModelRegistry) -> None:
    """grpc.health.v1.Health (Check and Watch) kept current by `registry`: service "" is SERVING
    once every model has a version loaded, a model's name that model; a model removed from the
    config turns NOT_SERVING, a name never configured is NOT_FOUND."""
    servicer, named = health.HealthServicer(), set()

    def update(ready: Dict[str, bool]) -> None:
        for name, serving in {**dict.fromkeys(named, False), **ready, "": all(ready.values())}.items():
            servicer.set(name, SERVING if serving else NOT_SERVING)
        named.update(ready)
    registry.on_change = update
    update(registry.readiness())
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)


def serve(model_config_file: str, port: int, host: str = "127.0.0.1", workers: int = 4,
          poll_seconds: float = 1.0, config_poll_seconds: float = 0.0, max_request_bytes: int = 64 << 20,
          limits: Optional[Limits] = None, tls: Optional[Tuple[bytes, bytes]] = None,
          client_ca: Optional[bytes] = None, allow_reload: bool = False,
          base_path_root: Optional[str] = None, reuse_port: bool = False) -> grpc.Server:
    """Loads the models and starts serving them; returns the started grpc.Server.

    Args:
      model_config_file: TF Serving model_config_list file.
      port, host: where to listen (loopback unless told).
      workers: inference calls run at once; 4x as many wait, the rest get RESOURCE_EXHAUSTED.
        Health, status and metadata calls are not counted and have threads of their own.
      poll_seconds: how often the base paths are rescanned for versions (0: never).
      config_poll_seconds: how often the config file is re-read (0: never).
      max_request_bytes: larger requests get RESOURCE_EXHAUSTED.
      limits: batch, tensor and exclusion limits.
      tls: (PEM certificate chain, PEM private key) to serve TLS only.
      client_ca: with `tls`, PEM CA certificate(s): clients must present a certificate it signed.
      allow_reload: whether HandleReloadConfigRequest may change the served models.
      base_path_root: when set, every base path must resolve under this directory.
      reuse_port: bind with SO_REUSEPORT, so that several processes serve one port (the
        kernel spreads connections over them); off, a port another server holds is an error.
    """
    registry = ModelRegistry(read_config(model_config_file), base_path_root)
    model_server = ModelServer(registry, limits, Admission(workers, 4 * workers), allow_reload)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=5 * workers + SPARE_THREADS),
                         options=[("grpc.max_receive_message_length", max_request_bytes),
                                  ("grpc.so_reuseport", int(reuse_port))])
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(model_server, server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(model_server, server)
    add_health_service(server, registry)
    address = f"{host}:{port}"
    if tls:
        credentials = grpc.ssl_server_credentials([(tls[1], tls[0])], root_certificates=client_ca,
                                                  require_client_auth=client_ca is not None)
        bound = server.add_secure_port(address, credentials)
    else:
        bound = server.add_insecure_port(address)
    if not bound:
        raise OSError(f"Cannot listen on {address}; is the port taken?")
    server.start()
    if poll_seconds > 0:
        registry.watch(poll_seconds, model_config_file, config_poll_seconds)
    server.registry, server.model_server = registry, model_server  # for tests and callers that stop polling
    return server


def spawn(model_config_file: str, port: int, *flags: str, cwd: Optional[str] = None) -> subprocess.Popen:
    """Starts this server (of the checkout at `cwd`) in a child process on 127.0.0.1:`port`."""
    return subprocess.Popen([sys.executable, "-m", "serving.server", "--model_config_file",
                             model_config_file, "--port", str(port), *flags], cwd=cwd)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_server(model_config_file: str, *flags: str) -> Iterator[str]:
    """This server in a child process on a free loopback port: yields its address
    ("127.0.0.1:port"; ready once a client's wait_until_ready returns), stops it on exit."""
    port = free_port()
    server = spawn(model_config_file, port, *flags)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Serve pushed models over TF Serving's gRPC API.")
    parser.add_argument("--model_config_file", required=True, help="TF Serving model_config_list file")
    parser.add_argument("--port", type=int, default=8500, help="gRPC port")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument("--file_system_poll_wait_seconds", type=float, default=1.0,
                        help="seconds between scans of the base paths for new versions (0: never)")
    parser.add_argument("--model_config_file_poll_wait_seconds", type=float, default=0.0,
                        help="seconds between re-reads of the config file (0: never)")
    parser.add_argument(RELOAD_FLAG, action="store_true",
                        help="let clients change the served models with HandleReloadConfigRequest (off: "
                             "PERMISSION_DENIED); only where every client may choose which files are loaded")
    parser.add_argument("--model_base_path_root",
                        help="every base path (config file or reload) must resolve under this directory")
    parser.add_argument("--grpc_max_threads", type=int, default=4, help="inference calls run at once (per process)")
    parser.add_argument("--processes", type=int, default=1,
                        help="server processes sharing the port (SO_REUSEPORT), each with the models loaded: "
                             "Python's GIL holds one process to about one core")
    parser.add_argument("--reuse_port", action="store_true", help=argparse.SUPPRESS)  # set for --processes' children
    parser.add_argument("--max_request_bytes", type=int, default=64 << 20, help="largest request accepted")
    parser.add_argument("--max_batch_size", type=int, default=10_000, help="most rows in one request")
    parser.add_argument("--max_exclusions", type=int, default=10_000,
                        help="most non-empty strings in a request's `exclude` input")
    parser.add_argument("--tensorflow_intra_op_parallelism", type=int, default=0,
                        help="threads one TensorFlow op may use (0: TensorFlow's choice)")
    parser.add_argument("--tensorflow_inter_op_parallelism", type=int, default=0,
                        help="TensorFlow ops run at once per call (0: TensorFlow's choice)")
    parser.add_argument("--ssl_cert_file", help="PEM certificate chain: serve TLS (needs --ssl_key_file)")
    parser.add_argument("--ssl_key_file", help="PEM private key of --ssl_cert_file")
    parser.add_argument("--ssl_client_ca_file",
                        help="PEM CA certificate(s): require and verify client certificates it signed "
                             "(TF Serving's client_verify; needs --ssl_cert_file)")
    args = parser.parse_args(argv)
    if bool(args.ssl_cert_file) != bool(args.ssl_key_file):
        parser.error("--ssl_cert_file and --ssl_key_file go together")
    if args.ssl_client_ca_file and not args.ssl_cert_file:
        parser.error("--ssl_client_ca_file needs --ssl_cert_file and --ssl_key_file (client certificates "
                     "are verified over TLS only)")
    for flag in ("grpc_max_threads", "max_batch_size", "max_exclusions", "processes"):
        if getattr(args, flag) < (0 if flag == "max_exclusions" else 1):
            parser.error(f"--{flag} must be at least {0 if flag == 'max_exclusions' else 1}")
    return args


def main() -> None:
    args = parse_args()
    parent = os.getppid()
    children = [subprocess.Popen([sys.executable, "-m", "serving.server", *sys.argv[1:], "--processes", "1",
                                  "--reuse_port"]) for _ in range(args.processes - 1)]
    tf.config.threading.set_intra_op_parallelism_threads(args.tensorflow_intra_op_parallelism)
    tf.config.threading.set_inter_op_parallelism_threads(args.tensorflow_inter_op_parallelism)
    try:
        cert, key, ca = (Path(path).read_bytes() if path else None
                         for path in (args.ssl_cert_file, args.ssl_key_file, args.ssl_client_ca_file))
        tls = (cert, key) if cert else None
        server = serve(args.model_config_file, args.port, args.host, args.grpc_max_threads,
                       args.file_system_poll_wait_seconds, args.model_config_file_poll_wait_seconds,
                       args.max_request_bytes, Limits(args.max_batch_size, max_exclusions=args.max_exclusions), tls,
                       ca, args.allow_reload_config, args.model_base_path_root, args.reuse_port or args.processes > 1)
    except (OSError, text_format.ParseError, ServableError) as error:
        for child in children:
            child.terminate()
        sys.exit(f"serving.server: {error}")
    verified = " (TLS, client certificates verified)" if args.ssl_client_ca_file else " (TLS)" if tls else ""
    processes = f", process {os.getpid()}" if args.reuse_port else f", {args.processes} processes" * bool(children)
    print(f"Serving on {args.host}:{args.port}{verified}{processes}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(1.0):  # a child whose parent died stops; so does a parent whose child died
        if (args.reuse_port and os.getppid() != parent) or any(c.poll() is not None for c in children):
            break
    for child in children:
        child.terminate()
    server.registry.stop()
    server.stop(grace=2).wait()


if __name__ == "__main__":
    main()
