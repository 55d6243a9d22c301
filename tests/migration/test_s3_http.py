"""The migration's plain HTTP calls to S3 (GET, PUT, listing): signed as botocore signs, on a
real SeaweedFS that enforces SigV4, keys and metadata kept exactly, connections reused and
replaced when the server drops them."""

import contextlib
import datetime
import shutil
import socket
import ssl
import subprocess
import threading
from urllib.parse import quote

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from storages.backends.s3 import S3Storage

from marsha_runner.migration.stores import S3Store
from marsha_runner.migration.stores.s3_http import ATTEMPTS, Dropped, S3Error, S3Http, SigV4
from tests.conftest import require
from tests.migration.conftest import WeedServer, weed_available

NOW = datetime.datetime(2026, 12, 3, 7, 30, 5, tzinfo=datetime.UTC)
ODD_KEYS = ["a b+c/é~(1)&x=y.mp4", "plain/seg_00001.cmfv", "sp  ace/%41/*.m3u8"]


def test_signature_is_the_one_botocore_computes(monkeypatch):
    """Same request, same instant: the same Authorization header as botocore's S3 signer
    (what AWS and Scaleway check), with metadata, odd characters and a query."""
    headers = {
        "content-type": "video/mp4",
        "cache-control": "max-age=31536000,  public",
        "x-amz-meta-origin": "media  convert",
        "range": "bytes=0-9",
    }
    query = {"list-type": "2", "prefix": "a b+c/é~", "continuation-token": "x/y=="}
    path = "/bucket/a b+c/é~(1)&x=y.mp4"
    ours = SigV4("eu-west-3", lambda: ("AKID", "SECRET/KEY", "TOKEN"))
    signed = ours.headers("GET", "s3.example.org", quote(path, safe="/~"), query, headers, now=NOW)

    monkeypatch.setattr("botocore.auth.get_current_datetime", lambda: NOW.replace(tzinfo=None))
    url = "https://s3.example.org" + quote(path, safe="/~")  # the request's target
    request = AWSRequest(method="GET", url=url, params=query, headers=dict(headers))
    request.context["client_config"] = Config(s3={"payload_signing_enabled": False})  # as ours
    S3SigV4Auth(Credentials("AKID", "SECRET/KEY", "TOKEN"), "s3", "eu-west-3").add_auth(request)

    assert signed["authorization"] == request.headers["Authorization"]
    assert signed["x-amz-security-token"] == "TOKEN"
    assert "SECRET" not in signed["authorization"]


@pytest.fixture
def own_server():
    """A server of the test's own, to stop and start (data and ports kept)."""
    weed_available()
    server = WeedServer("http").start()
    try:
        yield server
    finally:
        server.cleanup()


def store_of(server, bucket) -> S3Store:
    return S3Store(S3Storage(**server.options(bucket)))


def test_keys_metadata_and_pages_round_trip(weed_pair):
    """Odd keys, every metadata field (Expires as sent) and a listing over several pages, as
    boto3 sees them on the server."""
    server = weed_pair[0]
    bucket = server.bucket()
    store, client = store_of(server, bucket), server.client()
    assert store.http is not None
    metadata = {
        "ContentType": "video/mp4",
        "CacheControl": "max-age=31536000",
        "ContentDisposition": 'attachment;  filename="clip  v2.mp4"',  # spaces kept as sent
        "ContentEncoding": "identity",
        "ContentLanguage": "fr-FR",
        "Expires": "Sun, 04 May 2031 03:02:01 GMT",
        "Metadata": {"origin": "media  convert", "job": "1234"},
    }
    for n, key in enumerate(ODD_KEYS):
        etag = store.write(key, f"body {n}".encode(), metadata)
        head = client.head_object(Bucket=bucket, Key=key)
        assert head["ETag"].strip('"') == etag
        assert head["ExpiresString"] == metadata["Expires"]
        assert head["Metadata"] == metadata["Metadata"]
        data, read = store.read_with_metadata(key)
        assert (data, read) == (f"body {n}".encode(), metadata)

    for n in range(1005):  # a second page of listing
        client.put_object(Bucket=bucket, Key=f"many/{n:04d}", Body=b"x" * (n % 7))
    listed = {info.key: info for info in store.list("")}
    assert len(listed) == 1005 + len(ODD_KEYS)
    assert set(ODD_KEYS) <= set(listed)
    assert listed["many/0006"].size == 6
    assert listed["many/0006"].etag == client.head_object(Bucket=bucket, Key="many/0006")[
        "ETag"
    ].strip('"')
    assert [i.key for i in store.list("many/000")] == [f"many/{n:04d}" for n in range(10)]


def test_credentials_from_boto3s_chain(weed_pair, monkeypatch):
    """A storage without keys: the plain calls sign with what boto3's chain finds (here the
    environment; an instance role alike)."""
    server = weed_pair[0]
    bucket = server.bucket()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", server.secret_key)
    store = S3Store(S3Storage(**{**server.options(bucket), "access_key": "", "secret_key": ""}))
    assert store.http is not None
    store.write("chain", b"signed with the environment's keys", {})
    assert store.read_with_metadata("chain")[0] == b"signed with the environment's keys"
    assert [info.key for info in store.list("")] == ["chain"]


def test_missing_key_and_wrong_secret_are_clear_errors(weed_pair):
    server = weed_pair[0]
    bucket = server.bucket()
    store = store_of(server, bucket)
    with pytest.raises(S3Error, match="NoSuchKey") as missing:
        store.read_with_metadata("nothing/here")
    assert missing.value.not_found

    options = {**server.options(bucket), "secret_key": "not-the-secret-at-all"}
    with pytest.raises(S3Error, match="HTTP 403") as refused:
        S3Store(S3Storage(**options)).write("k", b"data", {})
    assert refused.value.status == 403
    assert "not-the-secret" not in str(refused.value)
    assert server.secret_key not in str(refused.value)


def test_a_connection_the_server_dropped_is_replaced(own_server):
    """Kept-alive connections die with a server restart: the next calls open new ones."""
    bucket = own_server.bucket()
    store = store_of(own_server, bucket)
    store.write("before", b"1", {})
    assert store.read_with_metadata("before")[0] == b"1"
    assert store.http.connections.idle  # kept for the next call
    own_server.stop()
    own_server.start()
    for n in range(4):  # more than the attempts a call has: stale ones do not count
        store.write(f"after/{n}", b"2", {})
    assert store.read_with_metadata("after/3")[0] == b"2"


def test_ranged_stream_reads_into_a_buffer_and_keeps_its_connection(weed_pair):
    server = weed_pair[0]
    bucket = server.bucket()
    store = store_of(server, bucket)
    store.write("big", bytes(range(256)) * 4096, {})
    stream = store.open_range("big", 1000, 1999)
    buffer = bytearray(600)
    assert stream.readinto(buffer) == 600
    assert stream.read(1000) == (bytes(range(256)) * 8)[1600:2000]
    stream.close()
    assert len(store.http.connections.idle) == 1  # read to its end: reused
    stream = store.open_range("big", 0, 999_999)
    stream.read(10)
    stream.close()  # not read to its end: closed, never reused half-read
    assert not store.http.connections.idle


class TlsFront:
    """HTTPS in front of a server: TLS ends here with a certificate of a private CA, the bytes
    go on to the server (AWS and Scaleway speak HTTPS; SeaweedFS here speaks HTTP)."""

    def __init__(self, backend_port: int, folder):
        require(shutil.which("openssl") is not None, "needs openssl for a test certificate")
        self.cert, key = folder / "cert.pem", folder / "key.pem"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
             "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
             "-keyout", str(key), "-out", str(self.cert)],
            check=True, capture_output=True,
        )  # fmt: skip
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(self.cert, key)
        self.backend_port = backend_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:  # closed
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client):
        try:
            secure = self.context.wrap_socket(client, server_side=True)
        except (ssl.SSLError, OSError):
            client.close()
            return
        backend = socket.create_connection(("127.0.0.1", self.backend_port))
        threading.Thread(target=_pump, args=(backend, secure), daemon=True).start()
        _pump(secure, backend)

    def close(self):
        self.listener.close()


def _pump(source, sink):
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.close()


def test_https_with_a_private_ca_bundle(weed_pair, tmp_path):
    """The storage's ``verify`` (a CA bundle) is what the plain HTTP calls trust, as boto3."""
    server = weed_pair[0]
    bucket = server.bucket()
    front = TlsFront(int(server.endpoint.rsplit(":", 1)[1]), tmp_path)
    try:
        options = {
            **server.options(bucket),
            "endpoint_url": f"https://localhost:{front.port}",
            "verify": str(front.cert),
        }
        store = S3Store(S3Storage(**options))
        assert store.http.connections.scheme == "https"
        store.write("over/tls", b"secret bytes", {"ContentType": "text/plain"})
        assert store.read_with_metadata("over/tls") == (
            b"secret bytes",
            {"ContentType": "text/plain"},
        )
        assert [i.key for i in store.list("over/")] == ["over/tls"]
        assert store.head("over/tls").size == 12  # boto3, same trust

        untrusted = S3Store(S3Storage(**{**options, "verify": None, "bucket_name": bucket}))
        with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
            untrusted.http.get("over/tls")
    finally:
        front.close()


class CannedServer:
    """An HTTP server of the test's own that answers each request with the next canned bytes
    (what AWS may send and SeaweedFS does not: chunked bodies, folded headers, a connection
    closed mid-body), and records the requests it read."""

    def __init__(self, answers: list[bytes]):
        self.answers, self.requests = list(answers), []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while self.answers:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with client, client.makefile("rb") as reader:  # both: the socket closes with them
                while self.answers:
                    head = b""
                    while (line := reader.readline()) not in (b"\r\n", b""):
                        head += line
                    if not head:
                        break
                    length = [
                        int(h.split(b":")[1]) for h in head.split(b"\r\n")
                        if h.lower().startswith(b"content-length:")
                    ]  # fmt: skip
                    self.requests.append(head + (reader.read(length[0]) if length else b""))
                    answer = self.answers.pop(0)
                    client.sendall(answer)
                    if b"Connection: close" in answer:
                        break

    def http(self) -> S3Http:
        signer = SigV4("us-east-1", lambda: ("AKID", "SECRET", ""))
        return S3Http(base_url=f"http://127.0.0.1:{self.port}/bucket/", signer=signer)


LISTING = (
    b'<?xml version="1.0"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
    b"<Contents><Key>a%20b</Key><Size>3</Size><ETag>&quot;e1&quot;</ETag></Contents>"
    b"<IsTruncated>false</IsTruncated></ListBucketResult>"
)


def test_chunked_answers_folded_headers_and_one_connection():
    """AWS may answer chunked (listings): the body is whole, the connection reused; a folded
    header line continues its value; a 100 Continue before the answer is skipped; a 204
    has no body even without a Content-Length."""
    chunked = b"".join(
        b"%x;ext=1\r\n%s\r\n" % (len(LISTING[n : n + 50]), LISTING[n : n + 50])
        for n in range(0, len(LISTING), 50)
    )
    server = CannedServer(
        [
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked + b"0\r\n"
            b"X-Trailer: t\r\n\r\n",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
            b'ETag: "abc"\r\nx-amz-meta-origin: media\r\n convert\r\n'
            b"Content-Type: video/mp4\r\n\r\nhello",
            b'HTTP/1.1 204 No Content\r\nETag: "e2"\r\n\r\n',  # no length: no body
        ]
    )
    http = server.http()
    assert list(http.list("")) == [("a b", 3, "e1")]
    assert http.get("k") == (
        b"hello",
        {"ContentType": "video/mp4", "Metadata": {"origin": "media convert"}},
    )
    assert http.put("k2", b"", {}) == "e2"
    assert len(http.connections.idle) == 1  # every answer read whole: one connection
    assert server.requests[1].startswith(b"GET /bucket/k HTTP/1.1\r\n")
    assert b"authorization: AWS4-HMAC-SHA256" in server.requests[1]


def test_an_answer_cut_short_is_retried_then_reported():
    """A body that ends before its Content-Length is a dropped connection: retried as
    botocore does, and after the last attempt the error says so; nothing is reused."""
    cut = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\nonly ten b"
    server = CannedServer([cut] * ATTEMPTS)
    http = server.http()
    with pytest.raises(Dropped, match="ended 90 bytes early"):
        http.get("k")
    assert len(server.requests) == ATTEMPTS
    assert not http.connections.idle

    server = CannedServer([cut, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"])
    assert server.http().get("k")[0] == b"ok"  # the next attempt succeeds


def test_a_header_value_with_a_line_break_is_refused():
    server = CannedServer([b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"])
    with pytest.raises(ValueError, match="line break"):
        server.http().put("k", b"data", {"Metadata": {"x": "a\r\nx-amz-acl: public-read"}})
    assert server.requests == []
