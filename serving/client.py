"""Composing gRPC client: retrieval (top-N candidates) -> ranking -> top-k, with titles.

Talks TF Serving's gRPC API only (tensorflow-serving-api stubs), so it works against
TF Serving itself or serving/server.py. One channel, a deadline on every call, retries
with exponential backoff on UNAVAILABLE only; many users in one pair of calls; users the
retrieval model does not know get the most popular movies, marked `"source": "popular"`.

    python -m serving.client --user 196 -k 10
    python -m serving.client --user 196 -k 10 --json --exclude 50 181
"""
import argparse
import json
import random
import sys
import time
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import grpc
import numpy as np
from tensorflow_serving.apis import (get_model_status_pb2, model_service_pb2_grpc, predict_pb2,
                                     prediction_service_pb2_grpc)

from serving import health
from serving.tensors import from_proto, to_proto

SIGNATURE = "serving_default"
POPULAR_SIGNATURE = "popular"


class RecommenderClient:
    """Recommendations from a retrieval and a ranking model behind one gRPC address.

    Args:
      target: host:port of TF Serving's gRPC API.
      retrieval_model, ranking_model: model names in the server's model config.
      timeout: deadline of every call, in seconds.
      retries: extra attempts of a call that failed with UNAVAILABLE (backoff 50 ms, doubling).
      root_certificates: PEM CA certificate(s) to speak TLS; None for plaintext.
      server_name: the name the server's certificate holds, when `target` differs from it.
    """

    def __init__(self, target: str = "127.0.0.1:8500", retrieval_model: str = "retrieval",
                 ranking_model: str = "ranking", timeout: float = 5.0, retries: int = 3,
                 root_certificates: Optional[bytes] = None, server_name: Optional[str] = None):
        if root_certificates is None:
            self.channel = grpc.insecure_channel(target)
        else:
            options = [("grpc.ssl_target_name_override", server_name)] if server_name else None
            self.channel = grpc.secure_channel(target, grpc.ssl_channel_credentials(root_certificates), options)
        self.predictions = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.models = model_service_pb2_grpc.ModelServiceStub(self.channel)
        self.retrieval_model, self.ranking_model = retrieval_model, ranking_model
        self.timeout, self.retries, self.backoff = timeout, retries, 0.05
        self.max_rows = 10_000  # rows per ranking request (the server's --max_batch_size)
        self.timings: Dict[str, float] = {}  # seconds spent in each call of the last recommend_many

    def _call(self, method, request):
        for attempt in range(self.retries + 1):
            try:
                return method(request, timeout=self.timeout)
            except grpc.RpcError as error:
                if error.code() != grpc.StatusCode.UNAVAILABLE or attempt == self.retries:
                    raise
                time.sleep(self.backoff * 2 ** attempt * (1 + random.random()))

    def wait_until_ready(self, timeout: float = 120.0) -> None:
        """Blocks until the server's health service says SERVING; TimeoutError after `timeout` s.

        Against a server without the health service (TF Serving), waits for both models
        to report an AVAILABLE version instead.
        """
        deadline = time.monotonic() + timeout
        while True:
            try:
                if health.check(self.channel, "", self.timeout) == health.SERVING:
                    return
            except grpc.RpcError as error:
                if error.code() == grpc.StatusCode.UNIMPLEMENTED:
                    return self._wait_for_models(deadline, timeout)
                if error.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                    raise
            if time.monotonic() > deadline:
                raise TimeoutError(f"Server not serving after {timeout:.0f} s; is it running and are "
                                   "the models pushed?")
            time.sleep(0.2)

    def _wait_for_models(self, deadline: float, timeout: float) -> None:
        for model in (self.retrieval_model, self.ranking_model):
            request = get_model_status_pb2.GetModelStatusRequest()
            request.model_spec.name = model
            while True:
                try:
                    status = self.models.GetModelStatus(request, timeout=self.timeout)
                    if any(v.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
                           for v in status.model_version_status):
                        break
                except grpc.RpcError as error:
                    if error.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.NOT_FOUND):
                        raise
                if time.monotonic() > deadline:
                    raise TimeoutError(f"Model {model!r} not available after {timeout:.0f} s; "
                                       "is the server running and the model pushed?")
                time.sleep(0.5)

    def _predict(self, model: str, signature: str = SIGNATURE, **inputs: np.ndarray) -> dict:
        request = predict_pb2.PredictRequest()
        request.model_spec.name, request.model_spec.signature_name = model, signature
        for key, value in inputs.items():
            request.inputs[key].CopyFrom(to_proto(value))
        start = time.perf_counter()
        response = self._call(self.predictions.Predict, request)
        self.timings[model] = self.timings.get(model, 0.0) + time.perf_counter() - start
        return {key: from_proto(proto) for key, proto in response.outputs.items()}

    def retrieve(self, user_id: str) -> Tuple[List[str], np.ndarray, List[str]]:
        """Candidate movie ids, retrieval scores and titles for one user, best first."""
        out = self._predict(self.retrieval_model, user_id=np.array([user_id], dtype=object))
        keep = np.isfinite(out["scores"][0])  # -inf marks 'no movie left to offer'
        ids, titles = ([v.decode() for v in out[key][0][keep]] for key in ("movie_ids", "titles"))
        return ids, out["scores"][0][keep], titles

    def rank(self, user_id: str, movie_ids: List[str]) -> np.ndarray:
        """Predicted ratings float32 [len(movie_ids)] of the movies for the user."""
        users = np.array([user_id] * len(movie_ids), dtype=object)
        return self._predict(self.ranking_model, user_id=users, movie_id=np.array(movie_ids, dtype=object))["rating"]

    def popular(self, k: int) -> Tuple[List[str], List[str]]:
        """The k most-rated movies' ids and titles (the retrieval model's `popular` signature)."""
        out = self._predict(self.retrieval_model, POPULAR_SIGNATURE, k=np.array(k, np.int32))
        return [v.decode() for v in out["movie_ids"]], [v.decode() for v in out["titles"]]

    def recommend(self, user_id: str, k: int = 10, candidates: int = 100,
                  exclude: Iterable[str] = ()) -> List[dict]:
        """Top-k movies for one user; see `recommend_many`."""
        return self.recommend_many([user_id], k, candidates, {user_id: exclude})[user_id]

    def recommend_many(self, user_ids: Sequence[str], k: int = 10, candidates: int = 100,
                       exclude: Optional[Dict[str, Iterable[str]]] = None) -> Dict[str, List[dict]]:
        """Top-k movies for each user: one retrieval call for all, one ranking call for all.

        Movies the user rated in the training data never come back (the retrieval model
        drops them), nor do those in `exclude[user]` (e.g. rated since). Each item: rank,
        movie_id, title, score (predicted rating), like_probability (when the ranking
        model has it: items are ordered by it, else by score), source ("ranking", or
        "popular" for a user the model does not know).
        """
        self.timings = {}
        exclude = {user: set(movies) for user, movies in (exclude or {}).items()}
        out = self._predict(self.retrieval_model, user_id=np.array(list(user_ids), dtype=object))
        known = out.get("known_user", np.ones(len(user_ids), bool))  # older models: all known
        pairs: Dict[str, List[Tuple[str, str]]] = {}
        for row, user in enumerate(user_ids):
            if known[row]:
                keep = np.isfinite(out["scores"][row])  # -inf marks 'no movie left to offer'
                found = zip(out["movie_ids"][row][keep], out["titles"][row][keep])
                pairs[user] = [(m.decode(), t.decode()) for m, t in found
                               if m.decode() not in exclude.get(user, ())][:candidates]
        flat = [(user, movie) for user, movies in pairs.items() for movie, _ in movies]
        scores = {}
        for start in range(0, len(flat), self.max_rows):  # the server caps rows per request
            chunk = flat[start:start + self.max_rows]
            ranked = self._predict(self.ranking_model, user_id=np.array([u for u, _ in chunk], dtype=object),
                                   movie_id=np.array([m for _, m in chunk], dtype=object))
            like = ranked.get("like_probability")
            scores.update({pair: (float(ranked["rating"][i]), None if like is None else float(like[i]))
                           for i, pair in enumerate(chunk)})
        unknown = [user for row, user in enumerate(user_ids) if not known[row]]
        popular = self.popular(k + max(len(exclude.get(u, ())) for u in unknown)) if unknown else ([], [])
        answers = {}
        for user in user_ids:
            if user in pairs:
                # Order by like probability where the model has it (benchmarks/ranking.py: it
                # re-ranks better than the predicted rating), else by the rating.
                key = lambda m: -(scores[(user, m[0])][1] if scores[(user, m[0])][1] is not None  # noqa: E731
                                  else scores[(user, m[0])][0])
                order = sorted(pairs[user], key=key)[:k]
                items = [{"movie_id": m, "title": t, "score": scores[(user, m)][0],
                          "like_probability": scores[(user, m)][1], "source": "ranking"} for m, t in order]
            else:
                items = [{"movie_id": m, "title": t, "score": None, "like_probability": None, "source": "popular"}
                         for m, t in zip(*popular) if m not in exclude.get(user, ())][:k]
            answers[user] = [{"rank": r + 1, **item} for r, item in enumerate(items)]
        return answers

    def close(self) -> None:
        self.channel.close()


def format_table(user_id: str, items: List[dict]) -> str:
    note = " (unknown user: most popular movies)" if items and items[0]["source"] == "popular" else ""
    lines = [f"Recommendations for user {user_id}{note}:", f"{'rank':>4}  {'movie':>6}  {'score':>5}  title"]
    lines += [f"{i['rank']:>4}  {i['movie_id']:>6}  {'' if i['score'] is None else format(i['score'], '5.2f'):>5}"
              f"  {i['title']}" for i in items]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description="Recommend movies through TF Serving's gRPC API.")
    parser.add_argument("--user", required=True, help="raw MovieLens user id, e.g. 196")
    parser.add_argument("-k", type=int, default=10, help="number of recommendations")
    parser.add_argument("--candidates", type=int, default=100, help="retrieved movies to re-rank")
    parser.add_argument("--exclude", nargs="*", default=[], help="movie ids never to recommend (already rated)")
    parser.add_argument("--server", default="127.0.0.1:8500", help="host:port of the gRPC API")
    parser.add_argument("--retrieval_model", default="retrieval",
                        help="retrieval model name (retrieval_bruteforce on stock TF Serving)")
    parser.add_argument("--ranking_model", default="ranking", help="ranking model name")
    parser.add_argument("--timeout", type=float, default=5.0, help="deadline of each call, seconds")
    parser.add_argument("--wait", type=float, default=30.0, help="seconds to wait for the models")
    parser.add_argument("--tls_ca", help="PEM CA certificate: speak TLS, trusting this CA")
    parser.add_argument("--server_name", help="name in the server's certificate, if not the --server host")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args()
    ca = open(args.tls_ca, "rb").read() if args.tls_ca else None
    client = RecommenderClient(args.server, args.retrieval_model, args.ranking_model, timeout=args.timeout,
                               root_certificates=ca, server_name=args.server_name)
    try:
        client.wait_until_ready(args.wait)
        items = client.recommend(args.user, args.k, args.candidates, args.exclude)
    except (grpc.RpcError, TimeoutError) as error:
        detail = error.details() if isinstance(error, grpc.RpcError) else error
        sys.exit(f"serving.client: {detail}")
    finally:
        client.close()
    popular = bool(items) and items[0]["source"] == "popular"
    print(json.dumps({"user_id": args.user, "fallback": "popular" if popular else None, "recommendations": items})
          if args.json else format_table(args.user, items))


if __name__ == "__main__":
    main()
