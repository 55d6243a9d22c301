"""The streamed part path of the copier, with in-memory stores: rewind on retry, a short
source, an altered part, memory held per part in flight (the S3 side: test_resume.py)."""

import hashlib
import io
from concurrent.futures import ThreadPoolExecutor

import pytest

from marsha_runner.migration.copier import (
    STREAM_CHUNK,
    STREAM_HOLD,
    Copier,
    CopyFailed,
    MemoryBudget,
    _PartStream,
)
from marsha_runner.migration.stores import ObjectInfo, Store, Upload, composite_etag

MB = 1024 * 1024
DATA = bytes(range(256)) * (12 * MB // 256 + 7)  # 12 MiB and a bit: three 5 MiB parts


class Source(Store):
    identity = ("memory", "source")

    def __init__(self, data: bytes, *, cut: int = 0):
        self.data, self.cut, self.opened = data, cut, []

    def open_range(self, key, start, end):
        self.opened.append((start, end))
        return io.BytesIO(self.data[start : end + 1 - self.cut])


class Destination(Store):
    """Reads each streamed body as an HTTP client would (16 KiB asked at a time), once or
    twice (a retry rewinds the body); ``alter`` answers a wrong ETag for that part."""

    identity = ("memory", "destination")
    streams_parts = True

    def __init__(self, *, retry: int = 0, alter: int = 0):
        self.retry, self.alter = retry, alter
        self.parts, self.aborted, self.completed = {}, [], None
        self.largest_read = 0

    def multipart_begin(self, key, metadata):
        return Upload(key=key, id="u1")

    def multipart_part(self, upload, number, data, offset):
        assert len(data) == min(5 * MB, len(DATA) - offset)  # the Content-Length sent
        if number == self.retry:
            data.read(16384)
            data.read(16384)
            assert data.seek(0) == 0
        body = b""
        while chunk := data.read(16384):
            self.largest_read = max(self.largest_read, len(chunk))
            body += chunk
        self.parts[number] = body
        digest = hashlib.md5(body).hexdigest()  # noqa: S324
        return "0" * 32 if number == self.alter else digest

    def multipart_complete(self, upload, etags):
        self.completed = b"".join(self.parts[n] for n in sorted(self.parts))
        return composite_etag([bytes.fromhex(e) for e in etags])

    def multipart_abort(self, upload):
        self.aborted.append(upload.id)


def copy(source, destination, budget=None):
    with ThreadPoolExecutor(4) as pool:
        copier = Copier(
            source, destination, part_size=5 * MB, server_copy_max=0, parts_pool=pool,
            budget=budget or MemoryBudget(8 * MB),
        )  # fmt: skip
        info = ObjectInfo("big.mp4", len(DATA), etag="0123456789abcdef0123456789abcdef-2")
        return copier, copier.copy(info, None, "aws/big.mp4")


def test_parts_are_streamed_from_their_own_ranges_and_verified():
    source, destination = Source(DATA), Destination()
    copier, (checksum, copied) = copy(source, destination)
    assert copied and destination.completed == DATA
    assert sorted(source.opened) == [
        (0, 5 * MB - 1),
        (5 * MB, 10 * MB - 1),
        (10 * MB, len(DATA) - 1),
    ]
    parts = [hashlib.md5(DATA[i : i + 5 * MB]).digest() for i in range(0, len(DATA), 5 * MB)]  # noqa: S324
    assert checksum == composite_etag(parts)
    assert copier.parts_sent == 3
    assert destination.largest_read == STREAM_CHUNK  # never a whole part at once
    assert copier.budget.used == 0


def test_a_retried_part_reads_its_range_again_and_hashes_it_afresh():
    source, destination = Source(DATA), Destination(retry=2)
    _, (checksum, _) = copy(source, destination)
    assert destination.completed == DATA
    assert source.opened.count((5 * MB, 10 * MB - 1)) == 2


def test_an_altered_part_fails_the_copy_and_aborts_the_upload():
    destination = Destination(alter=2)
    with pytest.raises(CopyFailed, match="part 2 arrived altered"):
        copy(Source(DATA), destination)
    assert destination.aborted == ["u1"] and destination.completed is None


def test_a_source_ending_early_fails_the_copy():
    destination = Destination()
    with pytest.raises(CopyFailed, match="ended .* bytes early"):
        copy(Source(DATA, cut=100), destination)
    assert destination.aborted == ["u1"]


def test_parts_in_flight_hold_the_budget_not_a_part():
    budget = MemoryBudget(2 * STREAM_HOLD)  # two parts streaming at once, whatever their size
    _, (_, copied) = copy(Source(DATA), Destination(), budget)
    assert copied and budget.used == 0


def test_a_part_stream_rewinds_only_to_its_start():
    stream = _PartStream(Source(DATA), "k", 0, 99, None)
    with pytest.raises(io.UnsupportedOperation, match="only rewinds to its start"):
        stream.seek(10)
