"""Upload strategy for the embedded default: a signed, expiring URL to our own endpoint.

The ``policy`` field plays the role of an S3 POST policy: it is signed with the secret key,
names the one key it allows, the declared size and content type, and expires.
"""

from django.core import signing
from django.urls import reverse

from .base import UploadBackend, UploadPolicy, UploadRefused

SALT = "marsha_runner.storage.filesystem.upload"


class Backend(UploadBackend):
    def initiate_upload(self, policy: UploadPolicy) -> dict:
        self.validate(policy)
        token = signing.dumps(
            {
                "key": policy.key,
                "size": policy.size,
                "content_type": policy.content_type,
                "expires_in": policy.expires_in,
            },
            salt=SALT,
            compress=True,
        )
        return {
            "url": reverse("storage-upload"),
            "fields": {"key": policy.key, "Content-Type": policy.content_type, "policy": token},
        }


def check_policy(*, token: str, key: str) -> dict:
    """The signed policy (``size``, ``content_type``) if it allows ``key``, or refuse."""
    try:
        data = signing.loads(token, salt=SALT, max_age=None)
        signing.loads(token, salt=SALT, max_age=data["expires_in"])
    except signing.SignatureExpired as err:
        raise UploadRefused("Upload policy expired.") from err
    except (signing.BadSignature, KeyError, TypeError) as err:
        raise UploadRefused("Invalid upload policy.") from err
    if not {"key", "size", "content_type"} <= set(data):
        raise UploadRefused("Invalid upload policy.")
    if data["key"] != key:
        raise UploadRefused("This policy does not allow that key.")
    return data
