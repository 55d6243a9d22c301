"""The process's one boto3 session, for the S3 clients we make ourselves.

botocore decodes its endpoint rules and S3's models (about 0.1 s of CPU) once per session:
every client of one session shares them. Sessions are not thread-safe, so clients are made
under a lock; clients themselves are.
"""

import threading

import boto3

_session = boto3.session.Session()
_lock = threading.Lock()


def s3_client(**options):
    """A boto3 S3 client (``options`` as ``Session.client``'s) on the process's session."""
    with _lock:
        return _session.client("s3", **options)


def default_credentials():
    """What boto3's credential chain finds (environment, profile, instance role), or None;
    refreshable: ``get_frozen_credentials()`` at each use."""
    with _lock:
        return _session.get_credentials()
