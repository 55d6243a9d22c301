"""What one process shares between the videos it migrates: threads, memory, time budget.

A process copies ``concurrency`` objects at once whatever the number of videos in flight (as
rclone's ``--transfers``), sends as many parts of large objects at once, and holds at most
``MIGRATION_MEMORY`` bytes of object data: its peak memory does not grow with the data.
"""

import ctypes
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from django.conf import settings
from django.db import connection

from .copier import MemoryBudget, Throttle

BUDGET_SPENT = "the run's time budget (--max-seconds) is spent"
M_MMAP_THRESHOLD = -3  # glibc's mallopt parameters
M_ARENA_MAX = -8


def _malloc_gives_parts_back() -> None:
    """glibc raises its mmap threshold to the size of the first large block freed (up to
    32 MiB): after one part, parts come from per-thread heaps that keep their peak, and eight
    threads kept about 100 MB more than the budget (measured at 1 GiB). A fixed threshold keeps
    each part (5 MiB at least) in its own mapping, returned to the system when freed. It stays
    above small objects: mapping each body anew cost a page fault per 4 KiB (75,000 faults
    over 2,000 objects of 50-500 KB at 256 KiB, 23,000 at 4 MiB)."""
    try:
        libc = ctypes.CDLL(None)  # the process's own symbols (no ldconfig run to find libc)
        libc.mallopt(M_MMAP_THRESHOLD, 4 * 1024 * 1024)
        libc.mallopt(M_ARENA_MAX, 2)
    except (OSError, AttributeError):  # not glibc: its allocator has its own rules
        return


@dataclass
class Progress:
    """Callbacks a caller may pass (the command's progress bar); all optional, called from
    several threads."""

    on_video: object = None  # (video_id, objects, bytes) when a video's copy starts
    on_bytes: object = None  # (count) as bytes are copied or verified
    on_done: object = None  # (VideoMigration)

    def video(self, *args):
        if self.on_video:
            self.on_video(*args)

    def bytes(self, count):
        if self.on_bytes:
            self.on_bytes(count)

    def done(self, result):
        if self.on_done:
            self.on_done(result)


def _closing_connection(function, *args):
    try:
        return function(*args)
    finally:
        if connection.connection is not None:
            connection.close()


class CopyPools:
    """The objects pool, the parts pool and the memory budget of a run; a context manager."""

    def __init__(
        self,
        *,
        concurrency: int | None = None,
        max_seconds: float | None = None,
        bandwidth: int | None = None,
    ):
        _malloc_gives_parts_back()
        self.concurrency = max(1, concurrency or settings.MIGRATION_CONCURRENCY)
        self.deadline = time.monotonic() + max_seconds if max_seconds else None
        # Switches build URLs through the storage's boto3 resource, made once per thread by
        # django-storages (0.2 s of CPU and megabytes each): the thread that made the pools
        # switches its own videos, one more thread those of the video threads.
        self.owner = threading.current_thread()
        self.switch_pool = ThreadPoolExecutor(1, thread_name_prefix="migrate-switch")
        self.objects_pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="migrate")
        self.parts_pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="migrate-part")
        self.budget = MemoryBudget(settings.MIGRATION_MEMORY)
        self.throttle = Throttle(settings.MIGRATION_BANDWIDTH if bandwidth is None else bandwidth)

    def submit_object(self, function, *args):
        """``function(*args)`` on the objects pool; the database connection the call opened in
        that thread (the journal of a large object's parts) is closed after it."""
        return self.objects_pool.submit(_closing_connection, function, *args)

    def in_switch_thread(self, function, *args):
        """``function(*args)`` in the pools' owner thread or their one switch thread."""
        if threading.current_thread() is self.owner:
            return function(*args)
        return self.switch_pool.submit(function, *args).result()

    def stop_reason(self) -> str:
        if self.deadline is not None and time.monotonic() >= self.deadline:
            return BUDGET_SPENT
        return ""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.objects_pool.shutdown(wait=True, cancel_futures=True)
        self.parts_pool.shutdown(wait=True, cancel_futures=True)
        self.switch_pool.submit(_closing_connection, lambda: None)  # its thread's own
        self.switch_pool.shutdown(wait=True)
