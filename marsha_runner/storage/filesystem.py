"""Upload strategy for the embedded default: a signed, expiring URL to our own endpoint.

The ``policy`` field plays the role of an S3 POST policy: it is signed with the secret key,
names the one key it allows, the size cap and the content type, and expires.
"""

from django.core import signing
from django.urls import reverse

from .base import UploadBackend, UploadPolicy, UploadRefused

SALT = "marsha_runner.storage.filesystem.upload"


class Backend(UploadBackend):
    def initiate_upload(self, policy: UploadPolicy) -> dict:
        self.validate(policy)
        token = signing.dumps(
            {"key": policy.key, "max_size": policy.max_size, "expires_in": policy.expires_in},
            salt=SALT,
            compress=True,
        )
        return {
            "url": reverse("storage-upload"),
            "fields": {"key": policy.key, "Content-Type": policy.content_type, "policy": token},
        }


def check_policy(*, token: str, key: str) -> int:
    """Return the size cap the signed policy allows for ``key``, or refuse."""
    try:
        data = signing.loads(token, salt=SALT, max_age=None)
        signing.loads(token, salt=SALT, max_age=data["expires_in"])
    except signing.SignatureExpired as err:
        raise UploadRefused("Upload policy expired.") from err
    except (signing.BadSignature, KeyError, TypeError) as err:
        raise UploadRefused("Invalid upload policy.") from err
    if data["key"] != key:
        raise UploadRefused("This policy does not allow that key.")
    return data["max_size"]
