"""The upload strategy interface: one method, three small modules (s3, filesystem, dummy).

Like Django's session engines, ``settings.STORAGE_BACKEND`` names a module holding a
``Backend`` class; nothing else knows which one runs.
"""

from dataclasses import dataclass

VIDEO_CONTENT_TYPE_PREFIX = "video/"


class UploadRefused(ValueError):
    """The client asked for an upload we will not accept (the message says why)."""


@dataclass(frozen=True)
class UploadPolicy:
    """What an upload may be: where it lands, its exact size and type as the client declared
    them, until when. Both strategies hold the upload to them (S3 through the POST policy)."""

    key: str
    content_type: str
    size: int
    expires_in: int


class UploadBackend:
    """Hands a client the means to upload one object straight to video storage."""

    def initiate_upload(self, policy: UploadPolicy) -> dict:
        """Return ``{"url": ..., "fields": {...}}`` in the shape of an S3 presigned POST."""
        raise NotImplementedError

    @staticmethod
    def validate(policy: UploadPolicy) -> None:
        if not policy.content_type.startswith(VIDEO_CONTENT_TYPE_PREFIX):
            raise UploadRefused(f"Content type must be video/*, not {policy.content_type!r}.")
        key = policy.key
        if not key or ".." in key.split("/") or key.startswith("/") or "\x00" in key:
            raise UploadRefused("Invalid storage key.")
