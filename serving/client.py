"""Composing gRPC client: retrieval (top-N candidates) -> ranking -> top-k, with titles.

Talks TF Serving's gRPC API only (tensorflow-serving-api stubs), so it works against
TF Serving itself or serving/server.py.

    python -m serving.client --user 196 -k 10
    python -m serving.client --user 196 -k 10 --json
"""
import argparse
import json
import sys
import time
from typing import List, Tuple

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import (get_model_status_pb2, model_service_pb2_grpc, predict_pb2,
                                     prediction_service_pb2_grpc)

SIGNATURE = "serving_default"


class RecommenderClient:
    """Recommendations from a retrieval and a ranking model behind one gRPC address.

    Args:
      target: host:port of TF Serving's gRPC API.
      retrieval_model, ranking_model: model names in the server's model config.
      timeout: deadline of every call, in seconds.
    """

    def __init__(self, target: str = "127.0.0.1:8500", retrieval_model: str = "retrieval",
                 ranking_model: str = "ranking", timeout: float = 5.0):
        self.channel = grpc.insecure_channel(target)
        self.predictions = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.models = model_service_pb2_grpc.ModelServiceStub(self.channel)
        self.retrieval_model, self.ranking_model, self.timeout = retrieval_model, ranking_model, timeout

    def wait_until_ready(self, timeout: float = 120.0) -> None:
        """Blocks until both models report AVAILABLE; TimeoutError after `timeout` s."""
        deadline = time.monotonic() + timeout
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
                    if error.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.NOT_FOUND,
                                            grpc.StatusCode.DEADLINE_EXCEEDED):
                        raise
                if time.monotonic() > deadline:
                    raise TimeoutError(f"Model {model!r} not available after {timeout:.0f} s; "
                                       "is the server running and the model pushed?")
                time.sleep(0.5)

    def _predict(self, model: str, **inputs: np.ndarray) -> dict:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = model
        request.model_spec.signature_name = SIGNATURE
        for key, value in inputs.items():
            request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
        response = self.predictions.Predict(request, timeout=self.timeout)
        return {key: tf.make_ndarray(proto) for key, proto in response.outputs.items()}

    def retrieve(self, user_id: str) -> Tuple[List[str], np.ndarray, List[str]]:
        """Candidate movie ids, retrieval scores and titles for one user, best first."""
        out = self._predict(self.retrieval_model, user_id=np.array([user_id], dtype=object))
        keep = np.isfinite(out["scores"][0])  # -inf marks 'no movie left to offer'
        ids, titles = ([v.decode() for v in out[key][0][keep]] for key in ("movie_ids", "titles"))
        return ids, out["scores"][0][keep], titles

    def rank(self, user_id: str, movie_ids: List[str]) -> np.ndarray:
        """Predicted ratings float32 [len(movie_ids)] of the movies for the user."""
        users = np.array([user_id] * len(movie_ids), dtype=object)
        return self._predict(self.ranking_model, user_id=users,
                             movie_id=np.array(movie_ids, dtype=object))["rating"]

    def recommend(self, user_id: str, k: int = 10, candidates: int = 100) -> List[dict]:
        """Top-k movies for the user: the `candidates` best retrieved, re-ranked.

        Movies the user rated in the training data are never returned (the retrieval
        model excludes them). Each item: rank, movie_id, title, score (predicted rating).
        """
        ids, _, titles = self.retrieve(user_id)
        ids, titles = ids[:candidates], titles[:candidates]
        if not ids:
            return []
        ratings = self.rank(user_id, ids)
        order = np.argsort(-ratings, kind="stable")[:k]
        return [{"rank": r + 1, "movie_id": ids[i], "title": titles[i], "score": float(ratings[i])}
                for r, i in enumerate(order)]

    def close(self) -> None:
        self.channel.close()


def format_table(user_id: str, items: List[dict]) -> str:
    lines = [f"Recommendations for user {user_id}:", f"{'rank':>4}  {'movie':>6}  {'score':>5}  title"]
    lines += [f"{i['rank']:>4}  {i['movie_id']:>6}  {i['score']:5.2f}  {i['title']}" for i in items]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description="Recommend movies through TF Serving's gRPC API.")
    parser.add_argument("--user", required=True, help="raw MovieLens user id, e.g. 196")
    parser.add_argument("-k", type=int, default=10, help="number of recommendations")
    parser.add_argument("--candidates", type=int, default=100, help="retrieved movies to re-rank")
    parser.add_argument("--server", default="127.0.0.1:8500", help="host:port of the gRPC API")
    parser.add_argument("--timeout", type=float, default=5.0, help="deadline of each call, seconds")
    parser.add_argument("--wait", type=float, default=30.0, help="seconds to wait for the models")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args()
    client = RecommenderClient(args.server, timeout=args.timeout)
    try:
        client.wait_until_ready(args.wait)
        items = client.recommend(args.user, args.k, args.candidates)
    except (grpc.RpcError, TimeoutError) as error:
        detail = error.details() if isinstance(error, grpc.RpcError) else error
        sys.exit(f"serving.client: {detail}")
    finally:
        client.close()
    print(json.dumps({"user_id": args.user, "recommendations": items}) if args.json
          else format_table(args.user, items))


if __name__ == "__main__":
    main()
