"""serving/client.py over real gRPC against fake retrieval and ranking models (serving_fakes).

FakeRetrieval offers m1..m4 (u2 rated m4); FakeRanking rates movie mN at N for u1 and
10 - N for others. So u1's top 2 are m4, m3; u2's (m4 excluded) m1, m2; unknown users
get the popular list m9, m8, ...
"""
import datetime
import ipaddress

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from serving_fakes import FakeRanking, FakeRetrieval, code_of, save_module

from serving import server as S
from serving.client import RecommenderClient, format_table


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    base = tmp_path_factory.mktemp("models")
    retrieval, ranking = FakeRetrieval(), FakeRanking()
    save_module(retrieval, base / "retrieval" / "1", serving_default=retrieval.serve, popular=retrieval.popular)
    save_module(ranking, base / "ranking" / "1", serving_default=ranking.serve)
    old_retrieval, old_ranking = FakeRetrieval(legacy=True), FakeRanking(legacy=True)
    save_module(old_retrieval, base / "old_retrieval" / "1", serving_default=old_retrieval.serve)
    save_module(old_ranking, base / "old_ranking" / "1", serving_default=old_ranking.serve)
    return S.write_config(str(base / "models.config"), {name: name for name in (
        "retrieval", "ranking", "old_retrieval", "old_ranking")})


@pytest.fixture(scope="module")
def target(config):
    port = S.free_port()
    server = S.serve(config, port, poll_seconds=0)
    yield f"127.0.0.1:{port}"
    server.stop(None)


def ids(items):
    return [(item["movie_id"], item["source"]) for item in items]


def test_recommend_reranks_and_excludes(target):
    client = RecommenderClient(target)
    client.wait_until_ready(30)
    u1 = client.recommend("u1", k=2)
    assert ids(u1) == [("m4", "ranking"), ("m3", "ranking")]
    assert [(i["rank"], i["title"], i["score"], i["like_probability"]) for i in u1] == [
        (1, "Tm4", 4.0, pytest.approx(0.4)), (2, "Tm3", 3.0, pytest.approx(0.3))]
    assert ids(client.recommend("u2", k=2)) == [("m1", "ranking"), ("m2", "ranking")]  # m4 rated
    assert ids(client.recommend("u1", k=2, exclude=["m4"])) == [("m3", "ranking"), ("m2", "ranking")]
    assert ids(client.recommend("u1", k=2, candidates=2)) == [("m2", "ranking"), ("m1", "ranking")]
    client.close()


def test_unknown_user_gets_popular_movies_and_says_so(target):
    client = RecommenderClient(target)
    items = client.recommend("stranger", k=2, exclude=["m9"])
    assert ids(items) == [("m8", "popular"), ("m7", "popular")]
    assert "unknown user: most popular movies" in format_table("stranger", items)
    client.close()


def test_many_users_in_one_call_each(target):
    client = RecommenderClient(target)
    answers = client.recommend_many(["u1", "u2", "stranger"], k=1)
    assert {user: ids(items) for user, items in answers.items()} == {
        "u1": [("m4", "ranking")], "u2": [("m1", "ranking")], "stranger": [("m9", "popular")]}
    assert sorted(client.timings) == ["ranking", "retrieval"]  # one entry per model called
    client.max_rows = 3  # u1's 4 and u2's 3 candidates: ranked in 3 requests, same answers
    assert client.recommend_many(["u1", "u2"], k=1) == {user: answers[user] for user in ("u1", "u2")}
    client.close()


def test_older_exports_without_optional_outputs(target):
    client = RecommenderClient(target, retrieval_model="old_retrieval", ranking_model="old_ranking")
    items = client.recommend("stranger", k=1)  # no known_user: every user goes to ranking
    assert [(i["movie_id"], i["source"], i["like_probability"]) for i in items] == [("m1", "ranking", None)]
    client.close()


class Unavailable(grpc.RpcError):
    def __init__(self, code):
        self._code = code

    def code(self):
        return self._code


def test_retries_on_unavailable_only():
    client = RecommenderClient("127.0.0.1:1", retries=3)
    client.backoff = 0.0
    calls = []

    def flaky(request, timeout):
        calls.append(timeout)
        if len(calls) < 3:
            raise Unavailable(grpc.StatusCode.UNAVAILABLE)
        return "answer"
    assert client._call(flaky, None) == "answer" and calls == [5.0, 5.0, 5.0]

    calls.clear()

    def invalid(request, timeout):
        calls.append(timeout)
        raise Unavailable(grpc.StatusCode.INVALID_ARGUMENT)
    with pytest.raises(grpc.RpcError):
        client._call(invalid, None)
    assert len(calls) == 1
    client.close()


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
        assert ids(client.recommend("u1", k=1)) == [("m4", "ranking")]
        client.close()
        plaintext = RecommenderClient(f"127.0.0.1:{port}", retries=0, timeout=5)
        assert code_of(lambda: plaintext.recommend("u1", k=1)) == grpc.StatusCode.UNAVAILABLE
        plaintext.close()
    finally:
        server.stop(None)
