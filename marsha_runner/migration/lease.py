"""The per-video lease: two runs never migrate the same video at once.

A lease lives in the database (``MigrationLock``), so it holds across processes and machines.
A lease past its expiry, or held by a dead process on this host, is taken over: a run killed
with SIGKILL, a worker lost with its machine. A run renews its leases while it copies and
stops copying a video whose renewal fails (someone took it over: two copiers would race on
the same multipart upload).
"""

import os
import socket
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .models import MigrationLock


def lease_owner() -> str:
    """A name unique to one run in one process (host, pid, random)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _process_dead(lock: MigrationLock) -> bool:
    if lock.host != socket.gethostname():
        return False
    try:
        os.kill(lock.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _expiry():
    return timezone.now() + timedelta(seconds=settings.MIGRATION_LOCK_TTL)


def migration_lock_acquire(*, video_id, owner: str) -> bool:
    """Take the video's lease, or take over a dead one; False when a live run holds it."""
    fields = {"owner": owner, "host": socket.gethostname(), "pid": os.getpid()}
    with transaction.atomic():
        lock, created = MigrationLock.objects.select_for_update().get_or_create(
            video_id=video_id, defaults={**fields, "expires_on": _expiry()}
        )
        if created:
            return True
        if lock.owner != owner and lock.expires_on > timezone.now() and not _process_dead(lock):
            return False
        MigrationLock.objects.filter(video_id=video_id).update(**fields, expires_on=_expiry())
        return True


def migration_lock_renew(*, video_id, owner: str) -> bool:
    """Extend the lease; False when it is no longer ours (the caller must stop copying)."""
    return bool(
        MigrationLock.objects.filter(video_id=video_id, owner=owner).update(expires_on=_expiry())
    )


def migration_lock_release(*, video_id, owner: str) -> None:
    MigrationLock.objects.filter(video_id=video_id, owner=owner).delete()


def lease_renew_every() -> float:
    """Seconds between two renewals: a quarter of the lease, unless set."""
    configured = settings.MIGRATION_LOCK_RENEW_EVERY
    return configured if configured is not None else settings.MIGRATION_LOCK_TTL / 4
