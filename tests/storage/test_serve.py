"""Range serving of files under VIDEOS_ROOT (ffmpeg and HLS players read byte ranges)."""

import http.client
import os
import warnings
from urllib.parse import urlparse

import pytest
from django.core.files.storage import storages

SIZE = 10_000


@pytest.fixture
def served(videos_root):
    """A file of distinct bytes in video storage, a secret beside the root, and its URL."""
    data = os.urandom(SIZE)
    (videos_root / "vod" / "abc").mkdir(parents=True)
    (videos_root / "vod" / "abc" / "clip.mp4").write_bytes(data)
    (videos_root.parent / "secret.txt").write_bytes(b"outside the root")
    url = storages["videos"].url("vod/abc/clip.mp4")
    assert url == "/videos/vod/abc/clip.mp4"  # a stable prefix, never the disk path
    return data, url


def body(response):
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_full_get(client, served):
    data, url = served

    response = client.get(url)

    assert response.status_code == 200
    assert body(response) == data
    assert response["Accept-Ranges"] == "bytes"
    assert response["Content-Type"] == "video/mp4"
    assert response["Content-Length"] == str(SIZE)


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=100-199", 100, 199),
        ("bytes=0-0", 0, 0),
        ("bytes=9990-", 9990, SIZE - 1),  # open-ended
        ("bytes=-10", SIZE - 10, SIZE - 1),  # suffix: the last 10 bytes
        ("bytes=-20000", 0, SIZE - 1),  # suffix longer than the file
        ("bytes=9000-20000", 9000, SIZE - 1),  # end past the file is clipped
    ],
)
def test_range(client, served, header, start, end):
    data, url = served

    response = client.get(url, headers={"Range": header})

    assert response.status_code == 206
    assert body(response) == data[start : end + 1]
    assert response["Content-Range"] == f"bytes {start}-{end}/{SIZE}"
    assert response["Content-Length"] == str(end - start + 1)
    assert response["Accept-Ranges"] == "bytes"


@pytest.mark.parametrize(
    "header", ["bytes=10000-", "bytes=20000-30000", "bytes=500-100", "bytes=-0"]
)
def test_unsatisfiable_range(client, served, header):
    _data, url = served

    response = client.get(url, headers={"Range": header})

    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{SIZE}"


def test_head(client, served):
    _data, url = served

    response = client.head(url, headers={"Range": "bytes=0-9"})

    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes 0-9/{SIZE}"


def test_post_not_allowed(client, served):
    _data, url = served
    assert client.post(url).status_code == 405


def test_missing_file_404(client, served, videos_root):
    assert client.get(f"{videos_root}/vod/abc/nope.mp4").status_code == 404
    assert client.get(f"{videos_root}/vod/abc").status_code == 404  # a directory


ESCAPES = [
    "../secret.txt",
    "%2e%2e/secret.txt",
    "%2E%2E%2Fsecret.txt",
    "..%2fsecret.txt",
    "vod/../../secret.txt",
    "vod/%2e%2e/%2e%2e/secret.txt",
    "%2e%2e%5csecret.txt",
    "/etc/passwd",
    "%2fetc%2fpasswd",
    "vod/abc/clip.mp4%00.txt",
]


@pytest.mark.parametrize("tail", ESCAPES)
def test_escape_refused(client, served, videos_root, tail):
    response = client.get(f"/videos/{tail}")

    assert response.status_code in (400, 404)
    assert b"outside the root" not in body(response)
    assert b"root:" not in body(response)


def test_symlink_out_of_root_refused(client, served, videos_root):
    """A link under the root does not make a file outside it servable."""
    os.symlink(videos_root.parent / "secret.txt", videos_root / "vod" / "link.txt")
    os.symlink(videos_root.parent, videos_root / "vod" / "parent")

    for tail in ("vod/link.txt", "vod/parent/secret.txt"):
        response = client.get(f"/videos/{tail}")
        assert response.status_code == 404
        assert b"outside the root" not in body(response)


@pytest.mark.e2e
@pytest.mark.parametrize("tail", [*ESCAPES, "vod/abc/clip.mp4"])
def test_escape_refused_over_http(served, videos_root, live_server_url, tail):
    """The same paths sent raw over HTTP to uvicorn: no client-side normalisation."""
    data, _url = served
    server = urlparse(live_server_url)
    conn = http.client.HTTPConnection(server.hostname, server.port, timeout=10)
    try:
        conn.putrequest("GET", f"/videos/{tail}", skip_accept_encoding=True)
        conn.putheader("Range", "bytes=0-99")
        conn.endheaders()
        response = conn.getresponse()
        payload = response.read()
    finally:
        conn.close()

    if tail == "vod/abc/clip.mp4":  # the control: the route does serve real files
        assert response.status == 206
        assert payload == data[:100]
    else:
        assert response.status in (400, 404)
        assert b"outside the root" not in payload
        assert b"root:" not in payload


@pytest.mark.e2e
def test_streams_over_asgi_without_buffering(served, live_server_url):
    """Under uvicorn, a sync iterator is read whole into memory by Django (it warns): ours
    must be async, so a 1 GB video is streamed, not buffered."""
    import requests

    data, url = served
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        full = requests.get(live_server_url + url, timeout=10)
        part = requests.get(live_server_url + url, headers={"Range": "bytes=5000-"}, timeout=10)

    assert full.status_code == 200
    assert full.content == data
    assert full.headers["Content-Length"] == str(SIZE)
    assert part.status_code == 206
    assert part.content == data[5000:]
    assert not [w for w in caught if "synchronous iterators" in str(w.message)]
