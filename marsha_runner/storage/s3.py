"""S3 storage (Scaleway for new videos, AWS for legacy) and the presigned-POST upload."""

from storages.backends.s3 import S3Storage

from . import video_storage
from .base import UploadBackend, UploadPolicy


class VideoS3Storage(S3Storage):
    """S3Storage with our defaults; every option can still come from STORAGES OPTIONS."""

    default_acl = None
    file_overwrite = True
    signature_version = "s3v4"


class Backend(UploadBackend):
    """A real presigned POST: S3 itself enforces the key, the declared content type (the
    ``Content-Type`` field, which the object keeps; S3 ignores the file part's own type), the
    declared size exactly and the expiry."""

    def initiate_upload(self, policy: UploadPolicy) -> dict:
        self.validate(policy)
        storage = video_storage()
        client = storage.connection.meta.client
        return client.generate_presigned_post(
            Bucket=storage.bucket_name,
            Key=policy.key,
            Fields={"Content-Type": policy.content_type},
            Conditions=[
                ["eq", "$Content-Type", policy.content_type],
                ["content-length-range", policy.size, policy.size],
            ],
            ExpiresIn=policy.expires_in,
        )
