"""The command line of serving/client.py: `python -m serving.client --user 196 -k 10`.

Prints a table (or, with --json, one JSON object) of one user's recommendations; usage
mistakes (-k below 1, fewer --candidates than -k) exit with status 2, failed calls with 1.
"""
import argparse
import json
import sys
from pathlib import Path

import grpc

from serving import ordering
from serving.client import CANDIDATES, RecommenderClient, explain, format_table


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m serving.client",
                                     description="Recommend movies through TF Serving's gRPC API.")
    parser.add_argument("--user", required=True, help="raw MovieLens user id, e.g. 196")
    parser.add_argument("-k", type=int, default=10, help="number of recommendations (at least 1)")
    parser.add_argument("--candidates", type=int, default=CANDIDATES, help="retrieved movies to re-rank (at least k)")
    parser.add_argument("--order", choices=ordering.ORDERS, default="ranking",
                        help="ranking: the ranking model's score; retrieval: the retrieval model's order; "
                             "fused: reciprocal rank fusion of the two")
    parser.add_argument("--exclude", nargs="*", default=[], help="movie ids never to recommend (already rated)")
    parser.add_argument("--history", nargs="*", default=[],
                        help="movie ids the user rated since training: recommendations follow them (a new "
                             "user gets recommendations from these alone); never recommended")
    parser.add_argument("--age", type=int, help="a new user's age (side features: the model knows them)")
    parser.add_argument("--gender", help="a new user's gender, M or F")
    parser.add_argument("--occupation", help="a new user's occupation, e.g. writer")
    parser.add_argument("--zip", help="a new user's ZIP code")
    parser.add_argument("--server", default="127.0.0.1:8500", help="host:port of the gRPC API")
    parser.add_argument("--retrieval_model", default="retrieval",
                        help="retrieval model name (retrieval_bruteforce on stock TF Serving)")
    parser.add_argument("--ranking_model", default="ranking", help="ranking model name")
    parser.add_argument("--timeout", type=float, default=5.0, help="deadline of each call, seconds")
    parser.add_argument("--wait", type=float, default=30.0, help="seconds to wait for the models")
    parser.add_argument("--tls_ca", help="PEM CA certificate: speak TLS, trusting this CA")
    parser.add_argument("--tls_cert", help="PEM client certificate, for a server that verifies clients")
    parser.add_argument("--tls_key", help="PEM private key of --tls_cert")
    parser.add_argument("--server_name", help="name in the server's certificate, if not the --server host")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args(argv)
    if args.k < 1:
        parser.error(f"-k must be at least 1, got {args.k}")
    if args.candidates < args.k:
        parser.error(f"--candidates ({args.candidates}) must be at least -k ({args.k}): "
                     "the k recommendations are chosen from the candidates")
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls_cert and --tls_key go together")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    try:
        ca, cert, key = (Path(p).read_bytes() if p else None for p in (args.tls_ca, args.tls_cert, args.tls_key))
        client = RecommenderClient(args.server, args.retrieval_model, args.ranking_model, timeout=args.timeout,
                                   root_certificates=ca, server_name=args.server_name, certificate_chain=cert,
                                   private_key=key)
    except OSError as error:
        sys.exit(f"serving.client: {error}")
    try:
        client.wait_until_ready(args.wait)
        side = {key: getattr(args, key) for key in ("age", "gender", "occupation", "zip")}
        items = client.recommend(args.user, args.k, args.candidates, args.exclude, args.order, args.history, side)
    except grpc.RpcError as error:
        sys.exit(f"serving.client: {explain(error, client.tls)}")
    except (TimeoutError, ConnectionError) as error:
        sys.exit(f"serving.client: {error}")
    finally:
        client.close()
    popular = bool(items) and items[0]["source"] == "popular"
    if args.json:
        print(json.dumps({"user_id": args.user, "order": args.order,
                          "ordered_by": None if popular else client.ordered_by,
                          "fallback": "popular" if popular else None, "path": items[0]["path"] if items else None,
                          "history_ignored": client.history_ignored.get(args.user, 0), "recommendations": items}))
    else:
        print(format_table(args.user, items, client.ordered_by))
