"""Upload strategy for tests: a well-formed answer that points nowhere real."""

from .base import UploadBackend, UploadPolicy


class Backend(UploadBackend):
    def initiate_upload(self, policy: UploadPolicy) -> dict:
        self.validate(policy)
        return {
            "url": "https://dummy.invalid/upload",
            "fields": {"key": policy.key, "Content-Type": policy.content_type},
        }
