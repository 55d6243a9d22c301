"""The library's video storage, read through ours at every use.

django-peertube-runner-connector keeps its own lazy ``video_storage``, which caches
``storages["videos"]`` the first time it is touched: after a settings change (a test, a
reconfigured process) the library wrote to the old storage while we wrote to the new one, and
every reset had to forget two caches. Its modules hold references to that one object, so its
class is given a ``_wrapped`` that is never cached (``runners_library_storage_follow``, from
``RunnersConfig.ready``): each use goes to ``marsha_runner.storage.video_storage()``, the one
accessor.
"""

from django_peertube_runner_connector.storage import ConfiguredStorage

from marsha_runner.storage import video_storage


def _current(_lazy):
    return video_storage()


def _ignored(_lazy, _value):
    """LazyObject.__init__ stores ``empty``; nothing is kept."""


def runners_library_storage_follow() -> None:
    """The library's ``video_storage`` reads ``video_storage()`` at each use (idempotent)."""
    ConfiguredStorage._wrapped = property(_current, _ignored)
