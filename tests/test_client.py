"""serving/client.py over real gRPC against fake retrieval and ranking models (serving_fakes).

FakeRetrieval offers m1..m120, m1 best (retrieval score 1000 - N), u2 rated m4;
FakeRanking gives movie mN score N, like_probability (121 - N) / 128 and rating 3N mod 7. So
among u1's first 4 candidates the ranking score orders m4, m3, m2, m1, like probability
m1..m4, rating m2, m4, m1, m3; unknown users get the popular list m9, m8, ...
"""
import datetime
import ipaddress
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from serving_fakes import FakeRanking, FakeRetrieval, code_of, save_module

from serving import server as S
from serving.client import RecommenderClient, format_table
from serving.config import write_config
from serving.protos import predict_pb2, prediction_service_pb2_grpc
from serving.tensors import to_proto

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    base = tmp_path_factory.mktemp("models")
    FakeRetrieval().save(base / "retrieval" / "1")
    ranking = FakeRanking()
    save_module(ranking, base / "ranking" / "1", serving_default=ranking.serve, serve_history=ranking.serve_history)
    return write_config(str(base / "models.config"), {"retrieval": "retrieval", "ranking": "ranking"})


@pytest.fixture(scope="module")
def target(config):
    port = S.free_port()
    server = S.serve(config, port, poll_seconds=0)
    yield f"127.0.0.1:{port}"
    server.stop(None)


@pytest.fixture
def client(target):
    client = RecommenderClient(target, timeout=10)
    client.wait_until_ready(30)
    yield client
    client.close()


def ids(items):
    return [item["movie_id"] for item in items]


def test_default_order_is_the_ranking_models_score_with_every_figure(client):
    items = client.recommend("u1", k=2, candidates=4)
    assert items[0] == {"rank": 1, "movie_id": "m4", "title": "Tm4", "score": 4.0, "rating": 5.0,
                        "retrieval_score": 996.0, "like_probability": 117 / 128, "source": "ranking",
                        "path": "personal"}
    assert ids(items) == ["m4", "m3"] and client.ordered_by == "score"
    assert ids(client.recommend("u1", k=4, candidates=4, order="retrieval")) == ["m1", "m2", "m3", "m4"]
    assert [i["score"] for i in client.recommend("u1", k=2, candidates=4, order="retrieval")] == [999.0, 998.0]
    fused = client.recommend("u1", k=4, candidates=4, order="fused")
    # Retrieval ranks 1..4, ranking ranks 4..1: m1 and m4 get 1/61 + 1/64, m2 and m3 1/62 + 1/63;
    # ties keep the retrieval order.
    assert ids(fused) == ["m1", "m4", "m2", "m3"]
    assert [i["score"] for i in fused] == pytest.approx([1 / 61 + 1 / 64] * 2 + [1 / 62 + 1 / 63] * 2)
    with pytest.raises(ValueError, match="Unknown order"):
        client.recommend("u1", order="best")


def test_exclusions_go_to_the_retrieval_model_so_k_movies_still_come_back(client):
    first_100 = [f"m{i}" for i in range(1, 101)]
    items = client.recommend("u1", k=10, candidates=100, exclude=first_100, order="retrieval")
    assert ids(items) == [f"m{i}" for i in range(101, 111)]  # the model filled past the exclusions
    ranked = client.recommend("u1", k=10, exclude=first_100[:95])  # m96..m120 left; by score, highest N
    assert ids(ranked) == [f"m{i}" for i in range(120, 110, -1)]
    assert "m4" not in ids(client.recommend("u2", k=120, candidates=120))  # u2 rated it


def test_more_exclusions_than_candidates_and_candidates_past_the_catalogue(client):
    all_but_3 = [f"m{i}" for i in range(1, 118)]  # the catalogue is m1..m120
    assert ids(client.recommend("u1", k=10, candidates=100, exclude=all_but_3)) == ["m120", "m119", "m118"]
    assert ids(client.recommend("u1", k=10, exclude=[f"m{i}" for i in range(1, 121)])) == []
    items = client.recommend("u2", k=500, candidates=1000, order="retrieval")  # more than the 120 movies
    assert len(items) == 119 and "m4" not in ids(items)  # every movie but the one u2 rated


def test_without_a_health_service_it_waits_for_each_models_status(config, monkeypatch):
    monkeypatch.setattr(S, "add_health_service", lambda server, registry: None)  # like TF Serving
    port = S.free_port()
    server = S.serve(config, port, poll_seconds=0)
    try:
        client = RecommenderClient(f"127.0.0.1:{port}", timeout=5)
        client.wait_until_ready(10)  # Health/Check is UNIMPLEMENTED: GetModelStatus of both models
        assert ids(client.recommend("u1", k=2, candidates=4)) == ["m4", "m3"]
        client.close()
        absent = RecommenderClient(f"127.0.0.1:{port}", ranking_model="absent", timeout=1)
        with pytest.raises(TimeoutError, match="'absent' not available"):
            absent.wait_until_ready(1)
        absent.close()
    finally:
        server.stop(None)


def test_unknown_user_gets_popular_movies_and_says_so(client):
    items = client.recommend("stranger", k=2, exclude=["m9"])
    assert [(i["movie_id"], i["source"], i["score"]) for i in items] == [("m8", "popular", None),
                                                                          ("m7", "popular", None)]
    assert "unknown user: most popular movies" in format_table("stranger", items)


def test_a_history_given_at_request_time_is_pooled_excluded_and_says_its_path(client):
    # The fake puts movies numbered past the history's highest first and ignores ids it lacks.
    items = client.recommend("newbie", k=2, candidates=4, history=["m50", "bogus", ""], order="retrieval")
    assert ids(items) == ["m51", "m52"] and {i["path"] for i in items} == {"history"}
    assert client.history_ignored == {"newbie": 1}
    ranked = client.recommend("newbie", k=1, candidates=4, history=["m50"], side={"gender": "F", "age": 30})
    assert ids(ranked) == ["m54"] and ranked[0]["score"] == 54 + 1000 + 200  # the ranking got history and side
    assert "new user: from the history given" in format_table("newbie", ranked)
    assert ids(client.recommend("u1", k=2, candidates=4, order="retrieval")) == ["m1", "m2"]
    moved = client.recommend("u1", k=2, candidates=4, history=["m2"], order="retrieval")
    assert ids(moved) == ["m3", "m4"] and moved[0]["path"] == "personal"  # moved, and m2 excluded
    answers = client.recommend_many(["u2", "nobody", "blank"], k=2, candidates=4, order="retrieval",
                                    history={"u2": ["m1"], "nobody": ["bogus", "m200"], "blank": []},
                                    side={"blank": {"zip": "10001"}})
    assert {u: (ids(a), a[0]["path"]) for u, a in answers.items()} == {
        "u2": (["m2", "m3"], "personal"), "nobody": (["m9", "m8"], "popular"), "blank": (["m9", "m8"], "popular")}
    assert client.history_ignored == {"u2": 0, "nobody": 2, "blank": 0}
    assert ids(client.recommend("nobody", k=2, history=["bogus", "m9"], candidates=4))[0] != "m9"  # m9: history
    with pytest.raises(grpc.RpcError) as error:
        client.recommend("newbie", history=[f"m{i}" for i in range(1, 7)])
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "limit of 5" in error.value.details()
    with pytest.raises(ValueError, match="Unknown side features"):
        client.recommend("newbie", side={"shoe_size": 9})


def test_many_users_in_one_retrieval_call_and_chunked_ranking(client):
    answers = client.recommend_many(["u1", "u2", "stranger"], k=1, candidates=4)
    assert {user: ids(items) for user, items in answers.items()} == {"u1": ["m4"], "u2": ["m5"], "stranger": ["m9"]}
    assert sorted(client.timings) == ["ranking", "retrieval"]  # one entry per model called
    client.max_rows = 5  # u1's 4 and u2's 4 candidates: two requests, one user each, same answers
    sent, predict = [], client._predict
    client._predict = lambda model, *args, **inputs: sent.append(list(inputs.get("user_id", []))) or predict(
        model, *args, **inputs)
    assert client.recommend_many(["u1", "u2"], k=1, candidates=4) == {u: answers[u] for u in ("u1", "u2")}
    assert sent[1:] == [[b"u1"] * 4, [b"u2"] * 4]  # a user's candidates are never split (the score compares them)
    client._predict = predict
    client.max_rows = 3
    with pytest.raises(ValueError, match="exceed max_rows=3"):
        client.recommend_many(["u1"], k=1, candidates=4)
    client.max_rows = 10_000
    fused = client.recommend_many(["u1", "u2"], k=2, candidates=4, order="fused", exclude={"u1": ["m1"]})
    assert ids(fused["u1"]) == ["m2", "m5"] and ids(fused["u2"]) == ["m1", "m5"]


class Flaky(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Fails the first `failures` Predict attempts with `code`, then answers y = [1.0]."""

    def __init__(self, code, failures):
        self.code, self.failures, self.deadlines = code, failures, []

    def Predict(self, request, context):
        self.deadlines.append(context.time_remaining())
        if len(self.deadlines) <= self.failures:
            context.abort(self.code, "flaky")
        response = predict_pb2.PredictResponse()
        to_proto(np.ones(1, np.float32), response.outputs["y"])
        return response


@pytest.mark.parametrize("code, failures, attempts", [
    (grpc.StatusCode.UNAVAILABLE, 2, 3),  # gRPC's retry policy tries again until it answers
    (grpc.StatusCode.UNAVAILABLE, 9, 4),  # retries=3: four attempts, then the error
    (grpc.StatusCode.INVALID_ARGUMENT, 1, 1),  # never retried
])
def test_predict_is_retried_on_unavailable_only_within_its_deadline(code, failures, attempts):
    fake, server = Flaky(code, failures), grpc.server(ThreadPoolExecutor(2))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(fake, server)
    client = RecommenderClient(f"127.0.0.1:{server.add_insecure_port('127.0.0.1:0')}", retries=3, timeout=10)
    server.start()
    try:
        if failures < attempts:
            assert client._predict("m", x=np.ones(1, np.float32))["y"].tolist() == [1.0]
        else:
            assert code_of(lambda: client._predict("m", x=np.ones(1, np.float32))) == code
        assert len(fake.deadlines) == attempts and all(0 < d < 11 for d in fake.deadlines)  # one 10 s deadline
    finally:
        client.close()
        server.stop(None)
    with pytest.raises(ValueError, match="allows 0 to 4"):
        RecommenderClient(retries=5)


def self_signed():
    """A self-signed certificate for localhost / 127.0.0.1: (certificate PEM, key PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                               x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                                  critical=False)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .sign(key, hashes.SHA256()))
    return (certificate.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


def test_tls(config):
    certificate, key = self_signed()
    port = S.free_port()
    server = S.serve(config, port, poll_seconds=0, tls=(certificate, key))
    try:
        client = RecommenderClient(f"127.0.0.1:{port}", root_certificates=certificate, timeout=10)
        client.wait_until_ready(30)
        assert ids(client.recommend("u1", k=1, candidates=4)) == ["m4"]
        client.close()
        plaintext = RecommenderClient(f"127.0.0.1:{port}", retries=0, timeout=5)
        assert code_of(lambda: plaintext.recommend("u1", k=1)) == grpc.StatusCode.UNAVAILABLE
        with pytest.raises(ConnectionError, match="TLS handshake failed.*pass --tls_ca"):
            plaintext.wait_until_ready(30)
        plaintext.close()
        wrong_ca = RecommenderClient(f"127.0.0.1:{port}", root_certificates=self_signed()[0], retries=0)
        with pytest.raises(ConnectionError, match="TLS handshake failed.*--tls_ca is the CA"):
            wrong_ca.wait_until_ready(30)
        wrong_ca.close()
    finally:
        server.stop(None)


def test_client_certificates_are_required_and_verified_when_the_server_has_a_client_ca(config, tmp_path):
    certificate, key = self_signed()
    client_certificate, client_key = self_signed()
    port = S.free_port()
    server = S.serve(config, port, poll_seconds=0, tls=(certificate, key), client_ca=client_certificate)
    target = f"127.0.0.1:{port}"
    try:
        client = RecommenderClient(target, root_certificates=certificate, certificate_chain=client_certificate,
                                   private_key=client_key, timeout=10)
        client.wait_until_ready(30)
        assert ids(client.recommend("u1", k=1, candidates=4)) == ["m4"]
        client.close()
        stranger_certificate, stranger_key = self_signed()  # not signed by the client CA
        for chain, private in ((None, None), (stranger_certificate, stranger_key)):
            refused = RecommenderClient(target, root_certificates=certificate, certificate_chain=chain,
                                        private_key=private, retries=0)
            with pytest.raises(ConnectionError, match="TLS handshake failed.*--tls_cert and --tls_key"):
                refused.wait_until_ready(30)
            refused.close()
        for name, pem in (("ca.pem", certificate), ("cert.pem", client_certificate), ("key.pem", client_key)):
            (tmp_path / name).write_bytes(pem)
        tls = ["--tls_ca", str(tmp_path / "ca.pem")]
        answer = cli(target, "--user", "u1", "-k", "1", "--candidates", "4", "--json", *tls,
                     "--tls_cert", str(tmp_path / "cert.pem"), "--tls_key", str(tmp_path / "key.pem"))
        assert answer.returncode == 0 and json.loads(answer.stdout)["recommendations"][0]["movie_id"] == "m4"
        refused = cli(target, "--user", "u1", "--wait", "20", *tls)
        assert refused.returncode == 1 and "TLS handshake failed" in refused.stderr
        assert "is it running" not in refused.stderr
    finally:
        server.stop(None)


def cli(target, *args):
    return subprocess.run([sys.executable, "-m", "serving.client", "--server", target, *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_cli_answers_quickly_with_every_field(target):
    start = time.monotonic()
    answer = cli(target, "--user", "u1", "-k", "2", "--candidates", "4", "--json", "--order", "fused")
    seconds = time.monotonic() - start
    assert answer.returncode == 0, answer.stderr
    result = json.loads(answer.stdout)
    assert (result["order"], result["ordered_by"], result["fallback"]) == (
        "fused", "fused ranks of retrieval_score and score", None)
    assert [sorted(item) for item in result["recommendations"]] == [sorted(
        ["rank", "movie_id", "title", "score", "rating", "retrieval_score", "like_probability", "source",
         "path"])] * 2
    assert ids(result["recommendations"]) == ["m1", "m4"]
    new = json.loads(cli(target, "--user", "9999", "--history", "m50", "bogus", "--gender", "F", "--json").stdout)
    assert (new["path"], new["history_ignored"], new["recommendations"][0]["movie_id"]) == ("history", 1, "m120")
    table = cli(target, "--user", "u1", "-k", "2", "--candidates", "4")
    assert table.returncode == 0 and "ordered by score" in table.stdout and "rating" in table.stdout
    assert seconds < 10, f"the CLI took {seconds:.1f} s (no TensorFlow import: about 1 s when idle)"


@pytest.mark.parametrize("args, message", [
    (["-k", "0"], "-k must be at least 1"),
    (["-k", "-3"], "-k must be at least 1"),
    (["-k", "10", "--candidates", "5"], "--candidates (5) must be at least -k (10)"),
    (["--candidates", "0", "-k", "1"], "--candidates (0) must be at least -k (1)"),
    (["--order", "best"], "invalid choice"),
    (["--tls_cert", "c.pem"], "--tls_cert and --tls_key go together"),
])
def test_cli_usage_errors(args, message):
    answer = cli("127.0.0.1:1", "--user", "u1", *args)
    assert answer.returncode == 2 and message in answer.stderr


def test_client_never_imports_tensorflow_nor_the_server_side():
    check = ("import sys, serving.client, serving.cli, serving.ordering; "
             "loaded = [m for m in sys.modules if m == 'tensorflow' or m.startswith('tensorflow.python') "
             "or m in ('serving.registry', 'serving.service', 'serving.server')]; "
             "assert not loaded, loaded; print('ok')")
    answer = subprocess.run([sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert answer.returncode == 0 and answer.stdout.strip() == "ok", answer.stderr


def test_tensorflow_imported_after_the_client_still_works():
    check = ("import numpy as np, serving.client as c; import tensorflow as tf; "
             "from tensorflow_serving.apis import predict_pb2; "
             "r = predict_pb2.PredictRequest(); r.inputs['x'].CopyFrom(tf.make_tensor_proto(np.ones(2, np.float32))); "
             "r2 = c.predict_pb2.PredictRequest(); r2.CopyFrom(r); "
             "assert tf.make_ndarray(r2.inputs['x']).tolist() == [1.0, 1.0]; "
             "assert float(tf.reduce_sum(tf.ones(3))) == 3.0; print('ok')")
    answer = subprocess.run([sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert answer.returncode == 0 and answer.stdout.strip() == "ok", answer.stderr[-2000:]
