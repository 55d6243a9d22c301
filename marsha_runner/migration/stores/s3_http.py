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
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import http.client
import random
import ssl
import threading
import time
import xml.etree.ElementTree as ElementTree
from urllib.parse import quote, unquote_plus, urlsplit

from .base import METADATA_HEADERS

UNSIGNED = "UNSIGNED-PAYLOAD"
RETRY_STATUSES = frozenset({500, 502, 503, 504})
ATTEMPTS = 3  # as botocore's standard retry mode
BLOCK_SIZE = 1024 * 1024  # what http.client reads from a file-like body at a time
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


def metadata_from_headers(headers: http.client.HTTPMessage) -> dict:
    """An object's metadata as boto3 names it, each value as the server sent it."""
    metadata = {
        name: headers[header] for name, header in METADATA_HEADERS.items() if headers[header]
    }
    user = {
        name[len(USER_METADATA) :]: value
        for name, value in ((n.lower(), v) for n, v in headers.items())
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
        """``headers`` with the date, the payload hash and the Authorization to send."""
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
                quote(path, safe="/~"),
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
                # Header values go out as latin-1 (http.client): the same bytes are signed.
                hashlib.sha256(canonical.encode("latin-1")).hexdigest(),
            ]
        )
        signature = hmac.new(
            self._key(stamp[:8], secret), to_sign.encode(), hashlib.sha256
        ).hexdigest()
        signed["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={access}/{scope}, "
            f"SignedHeaders={';'.join(names)}, Signature={signature}"
        )
        return signed


class _Connections:
    """Idle keep-alive connections to one host, shared by every thread of the process."""

    def __init__(self, scheme: str, netloc: str, verify, timeouts: tuple[float, float]):
        self.scheme, self.netloc = scheme, netloc
        self.connect_timeout, self.read_timeout = timeouts
        self.context = None
        if scheme == "https":
            self.context = ssl.create_default_context(
                cafile=verify if isinstance(verify, str) else None
            )
            if verify is False:
                self.context.check_hostname = False
                self.context.verify_mode = ssl.CERT_NONE
        self.idle: list[http.client.HTTPConnection] = []
        self.lock = threading.Lock()

    def take(self) -> tuple[http.client.HTTPConnection, bool]:
        """A connection and whether it was idle (then the server may have closed it)."""
        with self.lock:
            if self.idle:
                return self.idle.pop(), True
        if self.context is not None:
            connection = http.client.HTTPSConnection(
                self.netloc, timeout=self.connect_timeout, context=self.context,
                blocksize=BLOCK_SIZE,
            )  # fmt: skip
        else:
            connection = http.client.HTTPConnection(
                self.netloc, timeout=self.connect_timeout, blocksize=BLOCK_SIZE
            )
        connection.connect()
        connection.sock.settimeout(self.read_timeout)
        return connection, False

    def give_back(self, connection: http.client.HTTPConnection) -> None:
        with self.lock:
            self.idle.append(connection)


class Stream:
    """A GET's body as it arrives (``read``, ``readinto``); its connection is reused when the
    body was read to its end, closed otherwise."""

    def __init__(self, response: http.client.HTTPResponse, release):
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
        self.connections = _Connections(url.scheme, url.netloc, verify, timeouts)

    def _request(self, method: str, key: str, *, query=None, headers=None, body=None,
                 stream=False):  # fmt: skip
        """(response, connection, body): the body read unless ``stream`` (then the caller
        releases the connection). Retried as botocore's standard mode: on a dropped connection
        and on a 5xx, with backoff; a kept-alive connection the server had closed meanwhile is
        replaced without counting an attempt."""
        path = self.prefix + key
        target = quote(path, safe="/~")
        if query:
            target += "?" + "&".join(f"{k}={quote(str(v), safe='~')}" for k, v in query.items())
        attempt = 0
        while True:
            signed = self.signer.headers(method, self.host, path, query or {}, headers or {})
            connection, reused = None, False
            try:
                connection, reused = self.connections.take()
                connection.request(method, target, body=body, headers=signed)
                response = connection.getresponse()
                payload = b"" if stream and response.status < 300 else response.read()
            except ssl.SSLCertVerificationError:  # not a passing fault: no retry
                raise
            except (OSError, http.client.HTTPException):
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
        if response.isclosed() and not response.will_close:
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
        return (response.headers["etag"] or "").strip('"')

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
