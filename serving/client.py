"""Composing gRPC client: retrieval (top-N candidates) -> ranking -> top-k, with titles.

Speaks TF Serving's gRPC API only (TF Serving or serving/server.py); never imports TensorFlow
(serving/protos.py). A request-time history goes to the `retrieve_history` and `serve_history`
signatures. Each item says its path: "personal" (a known user), "history" (a new user, from
the history given) or "popular".

    python -m serving.client --user 9999 --history 50 181 172 --age 30 --gender F
"""
import json
import time
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from serving import ordering
from serving.protos import get_model_status_pb2, model_service_pb2_grpc, predict_pb2, prediction_service_pb2_grpc
from serving.tensors import from_proto, to_proto

SIGNATURE, RETRIEVE_SIGNATURE, POPULAR_SIGNATURE = "serving_default", "retrieve", "popular"
CANDIDATES = 200  # retrieved movies the ranking model re-orders (as many as its training lists hold)
HISTORY_SIGNATURES = ("retrieve_history", "serve_history")  # retrieval's and ranking's, with a request history
SIDE_FEATURES = {"age": "user_age", "gender": "user_gender", "occupation": "user_occupation", "zip": "user_zip"}
TLS_HINT = ("check that --tls_ca is the CA that signed the server's certificate and --server_name a name in it, "
            "or drop --tls_ca for a plaintext server")
RETRIED_SERVICE = "tensorflow.serving.PredictionService"  # the readiness waits poll on their own
CLOSED_HINTS = {True: "a server started with --ssl_client_ca_file needs --tls_cert and --tls_key signed by a CA "
                      "it trusts", False: "if it serves TLS, pass --tls_ca with the CA that signed its certificate"}


def explain(error: grpc.RpcError, tls: bool) -> str:
    """A failed call's details; for a failed TLS handshake, saying so and what to check."""
    details = error.details() or str(error.code())
    if "handshake" in details.lower():
        return f"TLS handshake failed ({details}); {TLS_HINT}"
    if error.code() == grpc.StatusCode.UNAVAILABLE and "socket closed" in details.lower():
        return f"TLS handshake failed: the server closed the connection ({details}); {CLOSED_HINTS[tls]}"
    return details


class RecommenderClient:
    """Recommendations from a retrieval and a ranking model behind one gRPC address.

    Args:
      target: host:port of TF Serving's gRPC API.
      retrieval_model, ranking_model: model names in the server's model config.
      timeout: deadline of every call, in seconds.
      retries: extra attempts of a Predict that failed with UNAVAILABLE, at most 4 (gRPC's retry
        policy: backoff from 50 ms, doubling, jittered; all within the call's deadline).
      root_certificates: PEM CA certificate(s) to speak TLS; None for plaintext (or the
        system's CAs when a client certificate is given).
      server_name: the name the server's certificate holds, when `target` differs from it.
      certificate_chain, private_key: PEM client certificate and key, for servers that verify clients.
      own_connection: a TCP connection of this client's own, not shared with the process's other
        channels to `target` (gRPC's default): a server's --processes spread connections, not calls.
    """

    def __init__(self, target: str = "127.0.0.1:8500", retrieval_model: str = "retrieval",
                 ranking_model: str = "ranking", timeout: float = 5.0, retries: int = 3,
                 root_certificates: Optional[bytes] = None, server_name: Optional[str] = None,
                 certificate_chain: Optional[bytes] = None, private_key: Optional[bytes] = None,
                 own_connection: bool = False):
        self.target, self.tls = target, root_certificates is not None or certificate_chain is not None
        options = [("grpc.use_local_subchannel_pool", 1)] if own_connection else []
        if not 0 <= retries <= 4:
            raise ValueError(f"retries={retries}: gRPC's retry policy allows 0 to 4 (at most 5 attempts)")
        if retries > 0:
            retry = {"maxAttempts": retries + 1, "initialBackoff": "0.05s", "maxBackoff": "1s",
                     "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}
            options.append(("grpc.service_config", json.dumps(
                {"methodConfig": [{"name": [{"service": RETRIED_SERVICE}], "retryPolicy": retry}]})))
        if not self.tls:
            self.channel = grpc.insecure_channel(target, options)
        else:
            options += [("grpc.ssl_target_name_override", server_name)] if server_name else []
            credentials = grpc.ssl_channel_credentials(root_certificates, private_key, certificate_chain)
            self.channel = grpc.secure_channel(target, credentials, options)
        self.predictions = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.models = model_service_pb2_grpc.ModelServiceStub(self.channel)
        self.health = health_pb2_grpc.HealthStub(self.channel)
        self.retrieval_model, self.ranking_model, self.timeout = retrieval_model, ranking_model, timeout
        self.max_rows = 10_000  # rows per ranking request (the server's --max_batch_size)
        self.timings: Dict[str, float] = {}  # seconds spent in each call of the last recommend_many
        self.ordered_by: Optional[str] = None  # what the last recommend_many ordered by
        self.history_ignored: Dict[str, int] = {}  # per user of the last call: history movies the model lacks

    def wait_until_ready(self, timeout: float = 120.0) -> None:
        """Blocks until the server's health service says SERVING; TimeoutError after `timeout` s.

        Against a server without the health service (TF Serving), waits for both models
        to report an AVAILABLE version instead. A TLS handshake that fails three times in a
        row raises ConnectionError: waiting would not mend it.
        """
        deadline, handshake_failures = time.monotonic() + timeout, 0
        while True:
            try:
                status = self.health.Check(health_pb2.HealthCheckRequest(), timeout=self.timeout).status
                if status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError as error:
                if error.code() == grpc.StatusCode.UNIMPLEMENTED:
                    return self._wait_for_models(deadline, timeout)
                handshake_failures = handshake_failures + 1 if "TLS handshake" in explain(error, self.tls) else 0
                if handshake_failures >= 3:  # a server restarting may close a connection, but not thrice
                    raise ConnectionError(f"{self.target}: {explain(error, self.tls)}") from None
                if error.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                    raise
            if time.monotonic() > deadline:
                raise TimeoutError(f"Server {self.target} not serving after {timeout:.0f} s; is it running and "
                                   "are the models pushed?")
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
            to_proto(value, request.inputs[key])  # numpy straight into the typed fields, no copy
        start = time.perf_counter()
        try:
            response = self.predictions.Predict(request, timeout=self.timeout)
        finally:
            self.timings[model] = self.timings.get(model, 0.0) + time.perf_counter() - start
        return {key: from_proto(proto) for key, proto in response.outputs.items()}

    def popular(self, k: int) -> List[tuple]:
        """The k most-rated movies' (id, title) (the retrieval model's `popular` signature)."""
        out = self._predict(self.retrieval_model, POPULAR_SIGNATURE, k=np.array(k, np.int32))
        return [(m.decode(), t.decode()) for m, t in zip(out["movie_ids"], out["titles"], strict=True)]

    def recommend(self, user_id: str, k: int = 10, candidates: int = CANDIDATES, exclude: Iterable[str] = (),
                  order: str = "ranking", history: Sequence[str] = (), side: Optional[dict] = None) -> List[dict]:
        """Top-k movies for one user; see `recommend_many`."""
        return self.recommend_many([user_id], k, candidates, {user_id: exclude}, order, {user_id: history},
                                   {user_id: side or {}})[user_id]

    def recommend_many(self, user_ids: Sequence[str], k: int = 10, candidates: int = CANDIDATES,
                       exclude: Optional[Dict[str, Iterable[str]]] = None, order: str = "ranking",
                       history: Optional[Dict[str, Sequence[str]]] = None,
                       side: Optional[Dict[str, dict]] = None) -> Dict[str, List[dict]]:
        """Top-k movies for each user: one retrieval call for all, ranking calls of `max_rows` pairs.

        Never returns the user's training movies, `exclude[user]` or `history[user]` (movie ids
        rated since training, pooled into the query and ranking features; ids the model lacks
        are counted in `self.history_ignored`). `side[user]`: a new user's {"age": int,
        "gender", "occupation", "zip": str}, any of them; `order`: one of ordering.ORDERS.
        Each item: rank, movie_id, title, score (what it was ordered by), rating,
        retrieval_score, like_probability (None where missing), source ("ranking" or
        "popular") and path (see the module docstring).
        """
        if order not in ordering.ORDERS:
            raise ValueError(f"Unknown order {order!r}; use one of {ordering.ORDERS}")
        self.timings, self.ordered_by, self.history_ignored = {}, None, {}
        exclude = {user: {str(m) for m in movies} for user, movies in (exclude or {}).items()}
        history = {user: [str(m) for m in movies if str(m)] for user, movies in (history or {}).items()}
        extra = _history_inputs(user_ids, history, side or {})
        banned = _padded([sorted(exclude.get(u, ())) for u in user_ids])  # the model drops these and fills past
        out = self._predict(self.retrieval_model, HISTORY_SIGNATURES[0] if extra else RETRIEVE_SIGNATURE,
                            user_id=np.array(list(user_ids), dtype=object), exclude=banned,
                            k=np.array(candidates, np.int32), **(extra or {}))
        for user, movies in history.items():
            exclude[user] = exclude.get(user, set()) | set(movies)
        paths, found = self._candidates(user_ids, out, history)
        ranked = self._rank_candidates(user_ids, found, extra)
        if ranked:
            self.ordered_by = ordering.ORDERED_BY[order]
        unknown = [user for user in user_ids if paths[user] == "popular"]
        popular = self.popular(k + max(len(exclude.get(u, ())) for u in unknown)) if unknown else []
        return {user: [{**item, "path": paths[user]} for item in
                       self._items(user, found.get(user), ranked, popular, exclude.get(user, ()), k, order)]
                for user in user_ids}

    def _candidates(self, user_ids: Sequence[str], out: dict,
                    history: Dict[str, List[str]]) -> Tuple[Dict[str, str], Dict[str, tuple]]:
        """Each user's path and, unless "popular", the retrieved (movie ids, titles: bytes [n], retrieval
        scores: float [n]) in retrieval order (the model dropped the exclusions); sets `history_ignored`."""
        ignored = out.get("history_unknown", np.zeros(len(user_ids), np.int32))
        self.history_ignored = {user: int(ignored[row]) for row, user in enumerate(user_ids) if user in history}
        paths = {user: "personal" if out["known_user"][row] else
                 "history" if len(history.get(user, ())) > ignored[row] else "popular"
                 for row, user in enumerate(user_ids)}
        offered = np.isfinite(out["scores"])  # -inf: nothing left to offer
        found = {user: tuple(out[key][row][offered[row]] for key in ("movie_ids", "titles", "scores"))
                 for row, user in enumerate(user_ids) if paths[user] != "popular"}
        return paths, found

    def _rank_candidates(self, user_ids: Sequence[str], found: Dict[str, tuple],
                         extra: Optional[Dict[str, np.ndarray]]) -> Dict[str, Dict[str, np.ndarray]]:
        """{user: {the ranking model's output: float [n], one per candidate}}, in `_chunks`:
        serve_history with `extra` (each row's history and side features), else serving_default."""
        ranked: Dict[str, Dict[str, np.ndarray]] = {}
        rows = {user: row for row, user in enumerate(user_ids)}
        for users in self._chunks(found):
            counts, picked = [len(found[user][0]) for user in users], [rows[user] for user in users]
            outputs = self._predict(  # ids as bytes: straight into the request
                self.ranking_model, HISTORY_SIGNATURES[1] if extra else SIGNATURE,
                user_id=np.repeat(np.array([str(user).encode() for user in users], dtype=object), counts),
                movie_id=np.concatenate([found[user][0] for user in users]),
                **{key: np.repeat(value[picked], counts, axis=0) for key, value in (extra or {}).items()})
            if ordering.RANKING_OUTPUT not in outputs:
                raise ValueError(f"Ranking model {self.ranking_model!r} has no {ordering.RANKING_OUTPUT!r} output; "
                                 "is it a ranking model exported by this project's Trainer?")
            ranked.update({user: {name: values[end - count:end] for name, values in outputs.items()}
                           for user, count, end in zip(users, counts, np.cumsum(counts), strict=True)})
        return ranked

    def _chunks(self, found: Dict[str, tuple]) -> Iterator[List[str]]:
        """Users whose candidates fill requests of at most `max_rows` (the server's cap), each user's
        candidates in one request: the ranking score compares a movie with the user's other rows."""
        chunk, rows = [], 0
        for user, (movies, _, _) in found.items():
            if len(movies) > self.max_rows:
                raise ValueError(f"{len(movies)} candidates for user {user} exceed max_rows={self.max_rows}; "
                                 "ask for fewer candidates")
            if rows + len(movies) > self.max_rows:
                yield chunk
                chunk, rows = [], 0
            chunk.append(user)
            rows += len(movies)
        if rows:
            yield chunk

    @staticmethod
    def _items(user, found, ranked, popular, excluded, k, order) -> List[dict]:
        if found is None:
            items = [{"movie_id": m, "title": t, "score": None, "rating": None, "retrieval_score": None,
                      "like_probability": None, "source": "popular"} for m, t in popular if m not in excluded][:k]
        else:
            movies, titles, retrieval = found
            outputs = ranked.get(user, {})
            ranking = outputs.get(ordering.RANKING_OUTPUT, retrieval[:0])  # no rows: no candidates
            keys = ordering.sort_keys(retrieval, ranking, order)
            rating, like = (outputs.get(name) for name in ("rating", "like_probability"))
            items = [{"movie_id": movies[i].decode(), "title": titles[i].decode(), "score": float(keys[i]),
                      "rating": None if rating is None else float(rating[i]), "retrieval_score": float(retrieval[i]),
                      "like_probability": None if like is None else float(like[i]), "source": "ranking"}
                     for i in ordering.order(retrieval, ranking, order)[:k]]
        return [{"rank": r + 1, **item} for r, item in enumerate(items)]

    def close(self) -> None:
        self.channel.close()


def _padded(rows: List[List[str]]) -> np.ndarray:
    """Rows of strings -> object [len(rows), longest] of bytes, '' padding (at least one column)."""
    out = np.full((len(rows), max([len(r) for r in rows] + [1])), b"", dtype=object)
    for i, row in enumerate(rows):
        out[i, :len(row)] = [m.encode() for m in row]
    return out


def _history_inputs(user_ids: Sequence[str], history: Dict[str, List[str]],
                    side: Dict[str, dict]) -> Optional[Dict[str, np.ndarray]]:
    """The history and side-feature inputs of `retrieve_history` and `serve_history`, a row per
    user; None when no user has either (the plain signatures serve then)."""
    side = {user: {key: value for key, value in (features or {}).items() if value not in (None, "")}
            for user, features in side.items()}
    unknown_keys = {key for features in side.values() for key in features} - set(SIDE_FEATURES)
    if unknown_keys:
        raise ValueError(f"Unknown side features {sorted(unknown_keys)}; use {sorted(SIDE_FEATURES)}")
    if not any(history.values()) and not any(side.values()):
        return None
    extra = {"history": _padded([history.get(u, []) for u in user_ids]),
             "user_age": np.array([int(side.get(u, {}).get("age", 0)) for u in user_ids], np.int64)}
    extra.update({name: np.array([str(side.get(u, {}).get(key, "")) for u in user_ids], dtype=object)
                  for key, name in SIDE_FEATURES.items() if key != "age"})
    return extra


def format_table(user_id: str, items: List[dict], ordered_by: Optional[str] = None) -> str:
    """A plain-text table of one user's recommendations."""
    if items and items[0]["source"] == "popular":
        note = " (unknown user: most popular movies)"
    elif items and items[0].get("path") == "history":
        note = f" (new user: from the history given{', ordered by ' + ordered_by if ordered_by else ''})"
    else:
        note = f", ordered by {ordered_by}" if ordered_by else ""
    lines = [f"Recommendations for user {user_id}{note}:",
             f"{'rank':>4}  {'movie':>6}  {'score':>8}  {'rating':>6}  title"]
    for i in items:
        score = "" if i["score"] is None else format(i["score"], ".4g")
        rating = "" if i["rating"] is None else format(i["rating"], "6.2f")
        lines.append(f"{i['rank']:>4}  {i['movie_id']:>6}  {score:>8}  {rating:>6}  {i['title']}")
    return "\n".join(lines)


if __name__ == "__main__":
    from serving.cli import main  # the command line: python -m serving.client --user 196
    main()
