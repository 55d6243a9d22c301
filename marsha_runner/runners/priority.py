"""Which runner jobs are offered first (issue 18): priority classes, oldest first within one.

The library's ``RunnerJob.priority`` (lower first) holds the class; ``jobs/request`` orders
pending jobs by ``(priority, createdAt)`` (``selectors.runner_jobs_available``, indexed by
migration 0007), so within a class the oldest job goes first and a video's jobs go in the
order they were created (the first rendition first, see ``transcoding_plan``).

A user's upload is waiting to be watched, first its first rendition (every new upload becomes
playable before any upload's other rungs run); staff work (re-trigger, switch to PEERTUBE, missing
renditions, transcription, work a storage migration causes) is not: with 10,000 staff jobs
pending, a new upload's first job is still the first one offered.
"""

from enum import IntEnum


class JobPriority(IntEnum):
    UPLOAD_FIRST = 0  # a user upload's first rendition: it makes the video playable
    UPLOAD = 10  # the rest of its ladder
    STAFF = 100
