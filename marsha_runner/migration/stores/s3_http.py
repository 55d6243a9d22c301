"""S3's object GET, PUT and listing as plain signed HTTP: the calls every object costs.

botocore spends about 1.1 ms of CPU on each call (event hooks, endpoint rules, parsing); these
take about 0.3 ms (measured between two SeaweedFS servers on 200 KB objects). On a bucket of
small objects that difference was most of the CPU of a migration and kept it at half of
rclone's speed. Everything else a copy does (multipart uploads, server-side copies, heads,
deletes) stays with boto3: a few calls per large object, where its cost does not show.

What boto3 decides stays boto3's: the bucket's URL (endpoint, region, addressing style) is
read once from a URL it presigns, and the credentials come from its session (static keys, or
the refreshable ones of its provider chain). Requests are signed with SigV4 and an unsigned
payload, as the boto3 client of the store does: every body's MD5 is checked against the ETag.

The HTTP/1.1 exchange itself is the few lines S3 needs (a bytes body out; an answer with a
Content-Length or chunked body back) rather than http.client: its header parsing goes through
the email package, a third of the CPU each call cost us (py-spy, one thread, 200 KB objects).
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import random
import socket
import ssl
import threading
import time
import xml.etree.ElementTree as ElementTree
from urllib.parse import SplitResult, quote, unquote_plus, urlsplit

from .base import METADATA_HEADERS

UNSIGNED = "UNSIGNED-PAYLOAD"
RETRY_STATUSES = frozenset({500, 502, 503, 504})
ATTEMPTS = 3  # as botocore's standard retry mode
READ_BUFFER = 64 * 1024  # a connection's read buffer: an answer's head and small bodies
MAX_LINE = 65536  # the longest status or header line accepted
JOIN_BODY = 64 * 1024  # bodies up to this size go out with the head, in one send
XMLNS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
USER_METADATA = "x-amz-meta-"


class S3Error(Exception):
    """An S3 answer other than success, as S3 names it (never the request's signature)."""

    def __init__(self, method: str, key: str, status: int, code: str = "", message: str = ""):
        self.status, self.code = status, code or str(status)
        super().__init__(f"{method} {key}: HTTP {status} {self.code} {message}".rstrip())

    @property
    def not_found(self) -> bool:
        return self.status == 404


def metadata_from_headers(headers: dict) -> dict:
    """An object's metadata as boto3 names it, each value as the server sent it (``headers``
    by lowercase name, as ``Answer`` holds them)."""
    metadata = {
        name: headers[header] for name, header in METADATA_HEADERS.items() if headers.get(header)
    }
    user = {
        name[len(USER_METADATA) :]: value
        for name, value in headers.items()
        if name.startswith(USER_METADATA)
    }
    if user:
        metadata["Metadata"] = user
    return metadata


def headers_from_metadata(metadata: dict) -> dict:
    headers = {}
    for name, value in metadata.items():
        if name == "Metadata":
            headers.update({f"{USER_METADATA}{k.lower()}": v for k, v in value.items()})
        elif isinstance(value, datetime.datetime):  # Expires as boto3 parsed it
            headers[METADATA_HEADERS[name]] = value.astimezone(datetime.UTC).strftime(
                "%a, %d %b %Y %H:%M:%S GMT"
            )
        else:
            headers[METADATA_HEADERS[name]] = value
    return headers


class SigV4:
    """AWS Signature Version 4 for S3 with an unsigned payload; the day's key kept."""

    def __init__(self, region: str, credentials):
        self.region = region
        self.credentials = credentials  # () -> (access key, secret key, token or "")
        self._day_key: tuple = ("", "", b"")  # (day, secret, key)

    def _key(self, day: str, secret: str) -> bytes:
        if self._day_key[:2] != (day, secret):
            key = f"AWS4{secret}".encode()
            for part in (day, self.region, "s3", "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            self._day_key = (day, secret, key)
        return self._day_key[2]

    def headers(self, method: str, host: str, path: str, query: dict, headers: dict, now=None):
        """``headers`` with the date, the payload hash and the Authorization to send; ``path``
        URI-encoded as it is sent (S3's canonical URI encodes it once)."""
        access, secret, token = self.credentials()
        stamp = (now or datetime.datetime.now(datetime.UTC)).strftime("%Y%m%dT%H%M%SZ")
        signed = {k.lower(): str(v) for k, v in headers.items()}
        signed.update({"host": host, "x-amz-content-sha256": UNSIGNED, "x-amz-date": stamp})
        if token:
            signed["x-amz-security-token"] = token
        names = sorted(signed)
        # Sent as they are, signed with their spaces trimmed and collapsed (SigV4's canonical
        # form, which the server computes from what it received).
        canonical = "\n".join(
            [
                method,
                path,
                "&".join(
                    f"{quote(k, safe='~')}={quote(str(v), safe='~')}"
                    for k, v in sorted(query.items())
                ),
                *(f"{name}:{' '.join(signed[name].split())}" for name in names),
                "",
                ";".join(names),
                UNSIGNED,
            ]
        )
        scope = f"{stamp[:8]}/{self.region}/s3/aws4_request"
        to_sign = "\n".join(
            [
                "AWS4-HMAC-SHA256",
                stamp,
                scope,
                # Header values go out as latin-1 (`_Connection`): the same bytes are signed.
                hashlib.sha256(canonical.encode("latin-1")).hexdigest(),
            ]
        )
        signature = hmac.digest(self._key(stamp[:8], secret), to_sign.encode(), "sha256").hex()
        signed["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={access}/{scope}, "
            f"SignedHeaders={';'.join(names)}, Signature={signature}"
        )
        return signed


class Dropped(ConnectionError):
    """The server closed the connection or answered what is not HTTP/1.x: retried as a
    dropped connection."""


class Answer:
    """A response: ``status``, ``headers`` (by lowercase name, the first of repeated ones)
    and its body, read with ``read`` and ``readinto`` (length-delimited or chunked)."""

    def __init__(self, reader, status: int, headers: dict, will_close: bool):
        self.reader, self.status, self.headers = reader, status, headers
        self.will_close = will_close
        self.chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        length = headers.get("content-length")
        if status in (204, 304):  # never a body, whatever the headers say
            self.left, self.chunked = 0, False
        elif self.chunked:
            self.left = 0  # of the current chunk
        elif length is not None and length.isdigit():
            self.left = int(length)
        else:  # the body ends with the connection
            self.left, self.will_close = -1, True
        self.done = self.left == 0 and not self.chunked

    def _next_chunk(self) -> None:
        line = self.reader.readline(MAX_LINE)
        try:
            self.left = int(line.split(b";", 1)[0], 16)
        except ValueError:
            raise Dropped(f"bad chunk size {line[:40]!r}") from None
        if self.left == 0:  # the last chunk: trailers end with an empty line
            while self.reader.readline(MAX_LINE) not in (b"\r\n", b"\n", b""):
                pass
            self.done = True

    def read(self, size: int = -1) -> bytes:
        if self.chunked:
            parts, want = [], size
            while not self.done and want != 0:
                if self.left == 0:
                    self._next_chunk()
                    continue
                part = self._exact(self.left if want < 0 else min(want, self.left))
                parts.append(part)
                want -= len(part) if want > 0 else 0
                if self.left == 0:
                    self.reader.readline(MAX_LINE)  # the line end after a chunk's data
            return b"".join(parts)
        if self.left < 0:  # until the server closes
            data = self.reader.read() if size < 0 else self.reader.read(size)
            self.done = size < 0 or not data
            return data
        return self._exact(self.left if size < 0 else min(size, self.left))

    def _exact(self, size: int) -> bytes:
        data = self.reader.read(size)
        if len(data) < size:
            raise Dropped(f"the answer ended {self.left - len(data)} bytes early")
        self.left -= size
        self.done = self.done or (self.left == 0 and not self.chunked)
        return data

    def readinto(self, buffer) -> int:
        if self.chunked or self.left < 0:  # rare here (ranged GETs have a length): copied
            data = self.read(len(buffer))
            buffer[: len(data)] = data
            return len(data)
        view = memoryview(buffer)[: self.left]
        got = self.reader.readinto(view)
        if got < len(view):
            raise Dropped(f"the answer ended {self.left - got} bytes early")
        self.left -= got
        self.done = self.left == 0
        return got


class _Connection:
    """One kept-alive HTTP/1.1 connection, one request at a time."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.reader = sock.makefile("rb", buffering=READ_BUFFER)

    def request(self, method: str, target: str, headers: dict, body) -> Answer:
        lines = [f"{method} {target} HTTP/1.1", *(f"{k}: {v}" for k, v in headers.items())]
        if body is not None:
            lines.append(f"content-length: {len(body)}")
        head = "\r\n".join(lines)
        if not head.count("\n") == head.count("\r") == len(lines) - 1:  # as http.client
            raise ValueError("a header value holds a line break")
        head = (head + "\r\n\r\n").encode("latin-1")
        if body is not None and len(body) <= JOIN_BODY:
            self.sock.sendall(head + bytes(body))
        else:
            self.sock.sendall(head)
            if body is not None:
                self.sock.sendall(body)
        return self._answer()

    def _answer(self) -> Answer:
        while True:
            line = self.reader.readline(MAX_LINE)
            version, _, rest = line.partition(b" ")
            if not version.startswith(b"HTTP/1.") or not rest[:3].isdigit():
                raise Dropped(f"not an HTTP answer: {line[:40]!r}")
            status = int(rest[:3])
            headers: dict = {}
            name = ""
            while (line := self.reader.readline(MAX_LINE)) not in (b"\r\n", b"\n", b""):
                text = line.decode("latin-1").rstrip("\r\n")
                if text[:1] in (" ", "\t") and name:  # a folded line continues the last value
                    headers[name] += text
                    continue
                name, _, value = text.partition(":")
                name = name.strip().lower()
                headers.setdefault(name, value.lstrip(" \t"))
            if not 100 <= status < 200:
                break
        connection = headers.get("connection", "").lower()
        will_close = "close" in connection or (
            version == b"HTTP/1.0" and "keep-alive" not in connection
        )
        return Answer(self.reader, status, headers, will_close)

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


class _Connections:
    """Idle keep-alive connections to one host, shared by every thread of the process."""

    def __init__(self, url: SplitResult, verify, timeouts: tuple[float, float]):
        self.scheme = scheme = url.scheme
        self.host, self.port = url.hostname, url.port or (443 if scheme == "https" else 80)
        self.connect_timeout, self.read_timeout = timeouts
        self.context = None
        if scheme == "https":
            self.context = ssl.create_default_context(
                cafile=verify if isinstance(verify, str) else None
            )
            if verify is False:
                self.context.check_hostname = False
                self.context.verify_mode = ssl.CERT_NONE
        self.idle: list[_Connection] = []
        self.lock = threading.Lock()

    def take(self) -> tuple[_Connection, bool]:
        """A connection and whether it was idle (then the server may have closed it)."""
        with self.lock:
            if self.idle:
                return self.idle.pop(), True
        sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.context is not None:
                sock = self.context.wrap_socket(sock, server_hostname=self.host)
            sock.settimeout(self.read_timeout)
        except BaseException:
            sock.close()
            raise
        return _Connection(sock), False

    def give_back(self, connection: _Connection) -> None:
        with self.lock:
            self.idle.append(connection)


class Stream:
    """A GET's body as it arrives (``read``, ``readinto``); its connection is reused when the
    body was read to its end, closed otherwise."""

    def __init__(self, response: Answer, release):
        self.response, self.release = response, release
        self.read = response.read
        self.readinto = response.readinto

    def close(self) -> None:
        if self.release is not None:
            self.release(self.response)
            self.release = None


class S3Http:
    """GET, PUT and list of one bucket, thread-safe; ``base_url`` ends with ``/``."""

    def __init__(self, *, base_url: str, signer: SigV4, verify=True, timeouts=(5, 60)):
        url = urlsplit(base_url)
        self.host, self.prefix = url.netloc, url.path
        self.signer = signer
        self.connections = _Connections(url, verify, timeouts)

    def _request(self, method: str, key: str, *, query=None, headers=None, body=None,
                 stream=False):  # fmt: skip
        """(response, connection, body): the body read unless ``stream`` (then the caller
        releases the connection). Retried as botocore's standard mode: on a dropped connection
        and on a 5xx, with backoff; a kept-alive connection the server had closed meanwhile is
        replaced without counting an attempt."""
        path = quote(self.prefix + key, safe="/~")
        target = path
        if query:
            target += "?" + "&".join(f"{k}={quote(str(v), safe='~')}" for k, v in query.items())
        attempt = 0
        while True:
            signed = self.signer.headers(method, self.host, path, query or {}, headers or {})
            connection, reused = None, False
            try:
                connection, reused = self.connections.take()
                response = connection.request(method, target, signed, body)
                payload = b"" if stream and response.status < 300 else response.read()
            except ssl.SSLCertVerificationError:  # not a passing fault: no retry
                raise
            except OSError:
                if connection is not None:
                    connection.close()
                if reused:
                    continue
                attempt += 1
                if attempt == ATTEMPTS:
                    raise
            else:
                if response.status < 300:
                    if not stream:
                        self._release(connection, response)
                    return response, connection, payload
                self._release(connection, response)
                attempt += 1
                if response.status not in RETRY_STATUSES or attempt == ATTEMPTS:
                    raise _error(method, key, response.status, payload)
            time.sleep(random.uniform(0, min(20, 2**attempt) / 10))  # noqa: S311

    def _release(self, connection, response) -> None:
        if response.done and not response.will_close:
            self.connections.give_back(connection)
        else:
            connection.close()

    def get(self, key: str) -> tuple[bytes, dict]:
        """(the bytes, the metadata) of ``key``."""
        response, _, body = self._request("GET", key)
        return body, metadata_from_headers(response.headers)

    def open_range(self, key: str, start: int, end: int) -> Stream:
        """Bytes ``start``..``end`` of ``key`` as they stream."""
        response, connection, _ = self._request(
            "GET", key, headers={"range": f"bytes={start}-{end}"}, stream=True
        )
        return Stream(response, lambda r: self._release(connection, r))

    def put(self, key: str, data: bytes, metadata: dict) -> str:
        """Store ``data`` with ``metadata``; the ETag the server computed."""
        response, _, _ = self._request(
            "PUT", key, headers=headers_from_metadata(metadata), body=data
        )
        return response.headers.get("etag", "").strip('"')

    def list(self, prefix: str):
        """(key, size, ETag) under ``prefix``, page by page as the server answers them."""
        query = {"list-type": "2", "prefix": prefix, "encoding-type": "url"}
        while True:
            _, _, body = self._request("GET", "", query=query)
            root = ElementTree.fromstring(body)  # noqa: S314  (our own S3 server's answer)
            for item in root.iter(f"{XMLNS}Contents"):
                yield (
                    unquote_plus(item.findtext(f"{XMLNS}Key")),
                    int(item.findtext(f"{XMLNS}Size")),
                    (item.findtext(f"{XMLNS}ETag") or "").strip('"'),
                )
            token = root.findtext(f"{XMLNS}NextContinuationToken")
            if root.findtext(f"{XMLNS}IsTruncated") != "true" or not token:
                return
            query = {**query, "continuation-token": token}


def _error(method: str, key: str, status: int, payload: bytes) -> S3Error:
    code = message = ""
    try:
        root = ElementTree.fromstring(payload)  # noqa: S314
        code, message = root.findtext("Code") or "", root.findtext("Message") or ""
    except ElementTree.ParseError:
        pass
    return S3Error(method, key, status, code, message)
