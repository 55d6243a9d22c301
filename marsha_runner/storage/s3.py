"""S3 storage (Scaleway for new videos, AWS for legacy) and the presigned-POST upload."""

from django.core.files.storage import storages
from storages.backends.s3 import S3Storage

from .base import VIDEO_CONTENT_TYPE_PREFIX, UploadBackend, UploadPolicy


class VideoS3Storage(S3Storage):
    """S3Storage with our defaults; every option can still come from STORAGES OPTIONS."""

    default_acl = None
    file_overwrite = True
    signature_version = "s3v4"


class Backend(UploadBackend):
    """A real presigned POST: S3 itself enforces key, content type, size and expiry."""

    def initiate_upload(self, policy: UploadPolicy) -> dict:
        self.validate(policy)
        storage = storages["videos"]
        client = storage.connection.meta.client
        return client.generate_presigned_post(
            Bucket=storage.bucket_name,
            Key=policy.key,
            Fields={"Content-Type": policy.content_type},
            Conditions=[
                ["starts-with", "$Content-Type", VIDEO_CONTENT_TYPE_PREFIX],
                ["content-length-range", 0, policy.max_size],
            ],
            ExpiresIn=policy.expires_in,
        )
