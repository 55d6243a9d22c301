"""The fields of PeerTube's runner calls: their limits, their validators and the refusals
they raise.

Apart from the services of ``protocol.py`` because the jobs/request view (``dispatch.py``)
checks the same fields without being a protocol service: one home for PeerTube's rules
(``server/core/middlewares/validators/runners``, docs/design.md#runner-protocol), so the two
entries can never accept different values.
"""

import re
import uuid as uuid_lib

from django_peertube_runner_connector.models import RunnerJobType

from .problems import RunnerRefusal

# PeerTube's CONSTRAINTS_FIELDS.RUNNERS / RUNNER_JOBS (lengths in characters).
TOKEN_MAX = 1000
NAME_MAX = 100
# PeerTube allows 1,000; the library's column holds 255 (refused rather than cut).
DESCRIPTION_MAX = 255
MESSAGE_MAX = 5000
REASON_MAX = 5000

# PeerTube's isStableOrUnstableVersionValid: "1.2.3" or "1.2.3-rc.1" / -alpha.N / -beta.N.
VERSION_RE = re.compile(r"\d+\.\d+\.\d+(?:-(?:rc|alpha|beta)\.\d+)?")
# The library's job types, and PeerTube 7's storyboard job a recent runner may announce: a
# runner listing a type we never create is served nothing of it, not refused.
KNOWN_JOB_TYPES = frozenset([*RunnerJobType.values, "generate-video-storyboard"])

NOT_PROCESSING = "runner_job_not_in_processing_state"
NOT_PENDING = "runner_job_not_in_pending_state"


def refusal_invalid(detail: str) -> RunnerRefusal:
    """400 ``invalid_request``: a field PeerTube's validators would refuse."""
    return RunnerRefusal(400, "invalid_request", detail)


def refusal_unknown_job() -> RunnerRefusal:
    """404 ``unknown_runner_job``: also for another runner's job, whose existence a runner is
    never told."""
    return RunnerRefusal(404, "unknown_runner_job", "Unknown runner job.")


def runner_text_clean(value, *, name: str, max_length: int, required: bool = True) -> str | None:
    """A string field of 1..max_length characters; None when optional and absent."""
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise refusal_invalid(f"{name} is required.")
    if len(value) > max_length:
        raise refusal_invalid(f"{name} is longer than {max_length} characters.")
    return value


def runner_uuid_clean(value, *, name: str = "job uuid") -> str:
    """A canonical uuid string; 400 when malformed (PeerTube's isUUIDValid)."""
    try:
        return str(uuid_lib.UUID(str(value)))
    except (TypeError, ValueError) as err:
        raise refusal_invalid(f"The {name} is not a valid uuid.") from err


def runner_version_valid(value) -> bool:
    """PeerTube's version format: ``1.2.3`` or ``1.2.3-rc.N`` (alpha, beta)."""
    return isinstance(value, str) and VERSION_RE.fullmatch(value) is not None


def runner_job_types_valid(value) -> bool:
    """A list of known job type names (may be empty: every type)."""
    return isinstance(value, list) and all(
        isinstance(item, str) and item in KNOWN_JOB_TYPES for item in value
    )


def runner_request_clean(*, job_types=None, version=None) -> list[str] | None:
    """The optional ``jobTypes`` and ``version`` of jobs/request; None job types means all."""
    if version is not None and not runner_version_valid(version):
        raise refusal_invalid("version is not a valid runner version.")
    if job_types is not None and not runner_job_types_valid(job_types):
        raise refusal_invalid("jobTypes must be a list of known job types.")
    return job_types or None


def runner_job_progress_clean(progress) -> int | None:
    """PeerTube's isRunnerJobProgressValid: an integer 0..100 (or absent)."""
    if progress is None:
        return None
    if isinstance(progress, bool):
        raise refusal_invalid("progress must be an integer within 0-100.")
    if isinstance(progress, float) and progress.is_integer():
        progress = int(progress)
    if isinstance(progress, str) and re.fullmatch(r"[+-]?\d{1,4}", progress.strip()):
        progress = int(progress)
    if not isinstance(progress, int) or not 0 <= progress <= 100:
        raise refusal_invalid("progress must be an integer within 0-100.")
    return progress
