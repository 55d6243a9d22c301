"""The videos tests' fixtures of an uploader's JWT session and the seeded dev runner."""

from tests.videos.conftest import jwt_session, seeded_runner_token  # noqa: F401 - fixtures
