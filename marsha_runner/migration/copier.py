"""Copy one object from a store to another and prove the copy, with bounded memory.

- Within one endpoint and set of credentials the server copies (CopyObject; UploadPartCopy
  above ``MIGRATION_SERVER_COPY_MAX``, 5 GiB on S3): no byte passes through us.
- Otherwise an object up to the part size is read whole and written once; a larger one is
  read as one stream per run of parts and written as a multipart upload whose parts go out
  in parallel. Every part in memory holds bytes of the process-wide ``MemoryBudget``, so the
  peak does not grow with the number of large objects, videos or threads (whole copies are
  bounded by the objects pool: concurrency x part size).
- A multipart upload is recorded (``PartJournal``) before its first part and each part once
  the destination answered it with our MD5: a killed run's upload is continued, sending only
  the parts it lacks.
- ``stop`` is asked between parts: a budget reached or a lease lost ends the copy with
  ``CopyStopped`` and leaves the upload to be continued.
"""

from __future__ import annotations

import hashlib
import io
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from .stores import ObjectInfo, Store, Upload, composite_etag, plain_md5, same_metadata

STREAM_CHUNK = 1024 * 1024  # what a streamed part reads from its GET and sends at a time
STREAM_HOLD = 2 * STREAM_CHUNK  # what a streamed part holds: the chunk and the HTTP buffers


class CopyFailed(Exception):
    """A copy that does not verify: sizes, checksums or metadata differ."""


class CopyStopped(Exception):
    """The run stopped this copy (its time budget, or the video's lease lost); resumable."""


class MemoryBudget:
    """Bytes of object data a process holds at once, shared by every copy in it."""

    def __init__(self, limit: int):
        self.limit = max(1, limit)
        self.used = 0
        self.condition = threading.Condition()

    def acquire(self, size: int) -> int:
        size = min(size, self.limit)  # one part larger than the budget still goes alone
        with self.condition:
            self.condition.wait_for(lambda: self.used + size <= self.limit)
            self.used += size
        return size

    def release(self, size: int) -> None:
        with self.condition:
            self.used -= size
            self.condition.notify_all()


class Throttle:
    """At most ``rate`` bytes per second over the whole process (0: no limit), as rclone's
    ``--bwlimit``: a migration need not saturate the link production serves videos on."""

    def __init__(self, rate: int = 0):
        self.rate = rate
        self.started = time.monotonic()
        self.taken = 0
        self.lock = threading.Lock()

    def take(self, size: int) -> None:
        if not self.rate:
            return
        with self.lock:
            self.taken += size
            due = self.started + self.taken / self.rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)  # pacing, not synchronisation


class PartJournal:
    """Where a copier records multipart uploads and their verified parts (see journal.py)."""

    def upload_of(self, row) -> tuple[str, dict]:
        """(upload id, {number: (md5, etag, size)}) recorded for ``row``; ("", {}) if none."""
        return "", {}

    def upload_started(self, row, upload_id: str) -> None: ...

    def part_verified(self, row, upload_id, number, size, md5, etag) -> None: ...

    def upload_ended(self, row) -> None: ...


@dataclass
class Copier:
    """Copies and verifies objects from one store to another, thread-safely."""

    source: Store
    destination: Store
    part_size: int
    server_copy_max: int
    parts_pool: ThreadPoolExecutor
    budget: MemoryBudget
    throttle: Throttle = field(default_factory=Throttle)
    journal: PartJournal = field(default_factory=PartJournal)
    on_bytes: object = None  # (count) as bytes are copied or verified
    stop: object = None  # () -> a reason to stop, or ""
    existing: dict = field(default_factory=dict)  # destination key → ObjectInfo, listed once
    parts_sent: int = 0
    parts_resumed: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _bytes(self, count: int) -> None:
        if self.on_bytes:
            self.on_bytes(count)

    def _check_stop(self) -> None:
        reason = self.stop() if self.stop else ""
        if reason:
            raise CopyStopped(reason)

    def _count(self, name: str) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)

    def copy(self, info: ObjectInfo, row, destination_key: str) -> tuple[str, bool]:
        """Make ``destination_key`` a verified copy of ``info``; (checksum, copied?)."""
        self._check_stop()
        already = self._verified_existing(info, destination_key)
        if already:
            self._bytes(info.size)
            return already, False
        if self.source.identity == self.destination.identity:
            if info.size <= self.server_copy_max:
                self.destination.server_copy(self.source, info.key, destination_key)
            else:
                self._server_copy_parts(info, row, destination_key)
            checksum = self._verify_server_copy(info, destination_key)
            self._bytes(info.size)
            return checksum, True
        if info.size <= self.part_size:
            return self._copy_whole(info, destination_key), True
        if self.destination.streams_parts and not plain_md5(info.etag):
            return self._stream_parts(info, row, destination_key), True
        return self._copy_parts(info, row, destination_key), True

    def _source_metadata(self, info: ObjectInfo) -> dict:
        if info.metadata or not self.source.keeps_metadata:
            return info.metadata
        head = self.source.head(info.key)
        if head is None:
            raise CopyFailed(f"{info.key}: gone from the source.")
        info.metadata = head.metadata
        return head.metadata

    def _verified_existing(self, info: ObjectInfo, destination_key: str) -> str:
        """A copy left by a killed run, provably identical: no need to copy it again."""
        listed = self.existing.get(destination_key)
        if listed is None or listed.size != info.size or not plain_md5(info.etag):
            return ""
        head = self.destination.head(destination_key)
        if head is None or head.size != info.size or head.etag != info.etag:
            return ""
        if self.destination.keeps_metadata and not same_metadata(
            self._source_metadata(info), head.metadata
        ):
            return ""
        return info.etag

    def _copy_whole(self, info: ObjectInfo, destination_key: str) -> str:
        # Not in the budget: whole copies are bounded by the objects pool (concurrency x part
        # size), and a large object's parts holding the budget must not stall small ones.
        self.throttle.take(info.size)
        data, metadata = self.source.read_with_metadata(info.key)
        if len(data) != info.size:
            raise CopyFailed(f"{info.key}: read {len(data)} bytes of {info.size}.")
        etag = self.destination.write(destination_key, data, metadata)
        if plain_md5(info.etag) and etag == info.etag:
            # The destination's ETag is the MD5 of the bytes it stored, the source's of the
            # bytes it holds: equal, the copy is proven without hashing it here (a fifth of
            # the CPU a small object costs us).
            md5 = etag
        else:
            md5 = hashlib.md5(data).hexdigest()  # noqa: S324  (the S3 ETag algorithm)
        del data
        self._bytes(info.size)
        self._verify(info, destination_key, md5=md5, composite=md5, metadata=metadata, etag=etag)
        return md5

    # --- Multipart ----------------------------------------------------------------------------

    @staticmethod
    def _part_size(size: int, wanted: int) -> int:
        """``wanted``, or larger when the object would need more than S3's 10,000 parts."""
        return max(wanted, -(-size // 10_000))

    def _ranges(self, size: int, part_size: int) -> list[tuple[int, int, int]]:
        return [
            (n, start, min(start + part_size, size) - 1)
            for n, start in enumerate(range(0, size, part_size), 1)
        ]

    def _resume_or_begin(self, info, row, destination_key, metadata, ranges) -> tuple:
        """The recorded upload with its parts the destination still holds alike, or a new one
        (also when the part size changed since: its parts would not line up)."""
        upload_id, recorded = self.journal.upload_of(row)
        if upload_id:
            upload = self.destination.upload_for(destination_key, upload_id)
            held = self.destination.multipart_parts(upload) if self.destination.resumable else None
            sizes = {number: end - start + 1 for number, start, end in ranges}
            if any(sizes.get(number) != part[2] for number, part in recorded.items()):
                held = None
            if held is not None:
                kept = {
                    n: part
                    for n, part in recorded.items()
                    if n in held and held[n] == (part[1], part[2])
                }
                return upload, kept
            self.destination.multipart_abort(upload)
            self.journal.upload_ended(row)
        upload = self.destination.multipart_begin(destination_key, metadata)
        self.journal.upload_started(row, upload.id)
        return upload, {}

    def _send_part(self, upload, number, data, start, held):
        try:
            digest = hashlib.md5(data).digest()  # noqa: S324
            etag = self.destination.multipart_part(upload, number, data, start)
            if etag and etag != digest.hex():
                raise CopyFailed(f"{upload.key}: part {number} arrived altered.")
            size = len(data)
        finally:
            del data
            self.budget.release(held)
        self._count("parts_sent")
        self._bytes(size)
        return number, size, digest, etag

    def _read_part(self, info, stream, number: int, size: int) -> tuple[bytes, int]:
        """The next ``size`` bytes of the stream, held in the budget."""
        held = self.budget.acquire(size)
        self.throttle.take(size)
        try:
            data = _read_exact(stream, size)
            if len(data) != size:
                raise CopyFailed(f"{info.key}: part {number} is {len(data)} bytes.")
        except BaseException:
            self.budget.release(held)
            raise
        return data, held

    def _abandon(self, futures: dict, upload: Upload, row, err: BaseException) -> None:
        """Parts not sent give their memory back; a stopped upload is kept to continue, a
        failed one aborted (nothing left billed on the destination)."""
        for future, held in futures.items():
            if future.cancel():
                self.budget.release(held)
        wait(list(futures))
        if not isinstance(err, CopyStopped):
            self.destination.multipart_abort(upload)
            self.journal.upload_ended(row)

    def _copy_multipart(self, info: ObjectInfo, row, destination_key: str, send) -> str:
        """A multipart upload begun or resumed, its missing parts sent by ``send(upload,
        ranges, verified, submit)`` (which answers the whole MD5 it read, or ""), each part
        recorded once verified, then completed and the whole verified."""
        metadata = self._source_metadata(info)
        ranges = self._ranges(info.size, self._part_size(info.size, self.part_size))
        upload, verified = self._resume_or_begin(info, row, destination_key, metadata, ranges)
        digests: list = [None] * len(ranges)
        etags: list = [None] * len(ranges)
        for number, (md5, etag, _size) in verified.items():
            digests[number - 1], etags[number - 1] = bytes.fromhex(md5), etag
        futures: dict = {}  # future → bytes of the budget it holds until it runs

        def record(finished):
            for future in finished:
                del futures[future]
                number, size, digest, etag = future.result()
                digests[number - 1], etags[number - 1] = digest, etag
                self.journal.part_verified(row, upload.id, number, size, digest.hex(), etag)

        def submit(held, function, *args):
            """``function(*args)`` on the parts pool, holding ``held`` bytes of the budget."""
            try:
                future = self.parts_pool.submit(function, *args, held)
            except BaseException:
                self.budget.release(held)
                raise
            futures[future] = held
            record([f for f in futures if f.done()])

        try:
            md5 = send(upload, ranges, verified, submit)
            record(wait(list(futures)).done)
            etag = self.destination.multipart_complete(upload, etags)
        except BaseException as err:
            self._abandon(futures, upload, row, err)
            raise
        self.journal.upload_ended(row)
        composite = composite_etag(digests)
        self._verify(
            info, destination_key, md5=md5, composite=composite, metadata=metadata, etag=etag
        )
        return md5 or composite

    def _copy_parts(self, info: ObjectInfo, row, destination_key: str) -> str:
        """Streamed reads → multipart upload, parts buffered and sent in parallel."""

        def send(upload, ranges, verified, submit) -> str:
            # The whole MD5 proves the read against a single-part source's ETag: then every
            # part is read, the verified ones only hashed; else only the missing ones are read.
            whole = hashlib.md5() if plain_md5(info.etag) else None  # noqa: S324
            wanted = ranges if whole else [r for r in ranges if r[0] not in verified]
            for run in _contiguous(wanted):
                stream = self.source.open_range(info.key, run[0][1], run[-1][2])
                try:
                    for number, start, end in run:
                        self._check_stop()
                        data, held = self._read_part(info, stream, number, end - start + 1)
                        if whole:
                            whole.update(data)
                        if number in verified:
                            self.budget.release(held)
                            if hashlib.md5(data).hexdigest() != verified[number][0]:  # noqa: S324
                                raise CopyFailed(f"{info.key}: changed under part {number}.")
                            self._count("parts_resumed")
                            self._bytes(len(data))
                            continue
                        submit(held, self._send_part, upload, number, data, start)
                        del data
                finally:
                    stream.close()
            return whole.hexdigest() if whole else ""

        return self._copy_multipart(info, row, destination_key, send)

    def _stream_part(self, info, upload, number, start, end, held):
        """One part from its own ranged GET straight into its UploadPart, hashed on the way:
        never whole in memory. Verified as a buffered part: the MD5 of the bytes sent is
        the ETag the destination computed."""
        body = _PartStream(self.source, info.key, start, end, self.throttle)
        try:
            etag = self.destination.multipart_part(upload, number, body, start)
        finally:
            body.close()
            self.budget.release(held)
        if body.sent != body.size:
            raise CopyFailed(f"{info.key}: part {number} is {body.sent} bytes.")
        digest = body.md5.digest()
        if etag and etag != digest.hex():
            raise CopyFailed(f"{upload.key}: part {number} arrived altered.")
        self._count("parts_sent")
        self._bytes(body.size)
        return number, body.size, digest, etag

    def _stream_parts(self, info: ObjectInfo, row, destination_key: str) -> str:
        """Parts in parallel, each streamed from its ranged GET into its UploadPart (a source
        without a plain MD5 ETag: nothing to hash in order); on resume the missing ones only,
        the verified ones not read. A part in flight holds ``STREAM_HOLD`` bytes of the
        budget, not a part."""

        def send(upload, ranges, verified, submit) -> str:
            for number, start, end in ranges:
                if number in verified:
                    self._count("parts_resumed")
                    self._bytes(end - start + 1)
                    continue
                self._check_stop()
                held = self.budget.acquire(STREAM_HOLD)
                submit(held, self._stream_part, info, upload, number, start, end)
            return ""

        return self._copy_multipart(info, row, destination_key, send)

    def _server_copy_parts(self, info: ObjectInfo, row, destination_key: str) -> None:
        """UploadPartCopy in parallel (a CopyObject cannot exceed 5 GiB); parts recorded."""
        metadata = self._source_metadata(info)
        ranges = self._ranges(info.size, self._part_size(info.size, self.part_size))
        upload, verified = self._resume_or_begin(info, row, destination_key, metadata, ranges)
        etags = [None] * len(ranges)
        for number, (_md5, etag, _size) in verified.items():
            etags[number - 1] = etag

        def part(number, start, end):
            self._check_stop()
            etag = self.destination.multipart_part_copy(
                upload, number, self.source, info.key, start, end
            )
            return number, end - start + 1, etag

        futures = {self.parts_pool.submit(part, *r): 0 for r in ranges if r[0] not in verified}
        try:
            for future in list(futures):
                number, size, etag = future.result()
                etags[number - 1] = etag
                self.journal.part_verified(row, upload.id, number, size, "", etag)
            self.destination.multipart_complete(upload, etags)
        except BaseException as err:
            self._abandon(futures, upload, row, err)
            raise
        self.journal.upload_ended(row)

    # --- Verification -------------------------------------------------------------------------

    def _verify(self, info, destination_key, *, md5, composite, metadata, etag=""):
        """The MD5 of what was read matches the source (when its ETag is one) and the
        destination; sizes equal; metadata kept.

        The destination's side is the ETag its write answered, computed by the server from
        the bytes it stored (a content checksum: equal MD5s mean equal bytes and sizes, and
        the metadata went with that same request). When the write gave none, or not an MD5
        (a filesystem, server-side encryption), the copy is looked up and read back.
        """
        if md5 and plain_md5(info.etag) and info.etag != md5:
            raise CopyFailed(f"{info.key}: read content differs from the source's ETag.")
        if etag and etag in (md5, composite):
            return
        head = self.destination.head(destination_key)
        if head is None or head.size != info.size:
            raise CopyFailed(f"{destination_key}: size differs after copy.")
        if head.etag not in (md5, composite):
            expected = md5 or self.source.md5(info.key)
            if self.destination.md5(destination_key) != expected:
                raise CopyFailed(f"{destination_key}: content differs after copy.")
        if self.destination.keeps_metadata and not same_metadata(metadata, head.metadata):
            raise CopyFailed(f"{destination_key}: metadata differs after copy.")

    def _verify_server_copy(self, info: ObjectInfo, destination_key: str) -> str:
        head = self.destination.head(destination_key)
        if head is None or head.size != info.size:
            raise CopyFailed(f"{destination_key}: size differs after copy.")
        if head.etag == info.etag and (plain_md5(info.etag) or "-" in info.etag):
            checksum = info.etag
        else:  # not comparable: compute both
            checksum = self.source.md5(info.key)
            if self.destination.md5(destination_key) != checksum:
                raise CopyFailed(f"{destination_key}: content differs after copy.")
        if not same_metadata(self._source_metadata(info), head.metadata):
            raise CopyFailed(f"{destination_key}: metadata differs after copy.")
        return checksum


class _PartStream:
    """The body of one UploadPart: its range of the source as one GET streams it, in
    ``STREAM_CHUNK`` reads (however little the HTTP client asks), MD5 on the way. botocore
    rewinds a body to retry a request: the GET is then made again and the hash restarted."""

    def __init__(self, source: Store, key: str, start: int, end: int, throttle: Throttle):
        self.source, self.key, self.start, self.end = source, key, start, end
        self.size = end - start + 1
        self.throttle = throttle
        self.stream = None
        self.md5 = hashlib.md5()  # noqa: S324  (the S3 ETag algorithm)
        self.sent = 0
        self.buffer = None  # one chunk, read into again and again (no allocation per read)

    def __len__(self) -> int:  # the Content-Length botocore sends
        return self.size

    def read(self, _size: int = -1) -> bytes | memoryview:
        """The next chunk; a view of this stream's buffer when the source reads into one
        (valid until the next read: the HTTP client has sent it by then)."""
        want = min(STREAM_CHUNK, self.size - self.sent)
        if want <= 0:
            return b""
        if self.stream is None:
            self.stream = self.source.open_range(self.key, self.start, self.end)
        self.throttle.take(want)
        readinto = getattr(self.stream, "readinto", None)
        if readinto is None:
            data = self.stream.read(want)
        else:
            if self.buffer is None:
                self.buffer = memoryview(bytearray(STREAM_CHUNK))
            data = self.buffer[: readinto(self.buffer[:want])]
        if not data:
            raise CopyFailed(f"{self.key}: the source ended {self.size - self.sent} bytes early.")
        self.md5.update(data)
        self.sent += len(data)
        return data

    def tell(self) -> int:
        return self.sent

    def seek(self, offset: int, whence: int = 0) -> int:
        if (offset, whence) != (0, 0):
            raise io.UnsupportedOperation("a part stream only rewinds to its start")
        if self.sent or self.stream is not None:
            self.close()
            self.md5, self.sent = hashlib.md5(), 0  # noqa: S324
        return 0

    def close(self) -> None:
        if self.stream is not None:
            self.stream.close()
            self.stream = None


def _read_exact(stream, size: int) -> bytes:
    """``size`` bytes from a stream (fewer only at its end), in as few copies as possible."""
    data = stream.read(size)
    if len(data) == size or not data:
        return data
    chunks = [data]
    got = len(data)
    while got < size:
        chunk = stream.read(size - got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _contiguous(ranges: list[tuple[int, int, int]]) -> list[list[tuple[int, int, int]]]:
    """Ranges grouped into runs of consecutive parts: one streamed read per run."""
    runs: list[list] = []
    for item in ranges:
        if runs and runs[-1][-1][0] + 1 == item[0]:
            runs[-1].append(item)
        else:
            runs.append([item])
    return runs
