"""The HTTP calls of a PeerTube runner, as peertube-runner makes them and checks their answers.

Apart from ``client.py`` (the runner's loop, its ffmpeg and whisper work, its socket) because
these are the wire facts the tests and benches lean on: one status expected per call, the
quiet race of accept, the source fetched by POST with redirects as a bare GET, and the
patience of a runner before a server outage (503 + Retry-After). See
docs/design.md#runner-protocol.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urljoin

import requests

REDIRECTS_AS_GET = (301, 302, 303)
ERROR_MESSAGE_MAX = 5000  # what the server takes (PeerTube's limit)
NOT_PENDING = "runner_job_not_in_pending_state"


class RunnerProtocolError(AssertionError):
    """The server answered something the real runner would refuse."""


def response_expect(response: requests.Response, status: int, what: str):
    """``response`` when its status is ``status``, as peertube-runner asserts; else raise."""
    if response.status_code != status:
        raise RunnerProtocolError(
            f"{what}: expected {status}, got {response.status_code}: {response.text[:500]}"
        )
    return response


class RunnerCalls:
    """A runner's HTTP side: its token, its sessions, and one method per runner call.

    ``completed`` lists the jobs it sent success for, ``events`` the (call, job uuid) in order,
    ``statuses`` every HTTP status it was answered. ``_lock`` guards what the worker threads of
    a subclass share."""

    def __init__(
        self,
        base_url: str,
        runner_token: str | None,
        *,
        session: requests.Session | None,
        http_timeout: float,
        outage_tolerance: float,
    ):
        self.base_url = base_url.rstrip("/")
        self.runner_token = runner_token
        self._session = session
        self._sessions = threading.local()  # one requests.Session per worker thread
        self.http_timeout = http_timeout
        # An outage of the server's storage or database answers 503 with Retry-After: the
        # call is made again as it was, until ``outage_tolerance`` seconds have passed.
        self.outage_tolerance = outage_tolerance
        self.statuses: Counter = Counter()  # every HTTP status this runner was answered
        self.completed: list[dict] = []  # jobs this runner sent success for
        self.events: list[tuple[str, str]] = []  # (call, job uuid), in order
        self._lock = threading.Lock()

    @property
    def session(self) -> requests.Session:
        """The session given, else one per thread (jobs run on worker threads)."""
        if self._session is not None:
            return self._session
        session = getattr(self._sessions, "session", None)
        if session is None:
            session = self._sessions.session = requests.Session()
        return session

    def _event(self, call: str, job_uuid: str) -> None:
        with self._lock:
            self.events.append((call, job_uuid))

    def post(self, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", self.http_timeout)
        url = f"{self.base_url}/api/v1/runners/{path}"
        return self.patiently(lambda: self.session.post(url, **kwargs))

    def patiently(self, send) -> requests.Response:
        """``send()`` again while the server answers 503 (an outage on its side: it changed
        nothing) or cannot be reached, waiting its ``Retry-After`` (at most 5 s), for
        ``outage_tolerance`` seconds; then the last answer (or error) stands."""
        deadline = time.monotonic() + self.outage_tolerance
        while True:
            try:
                response = send()
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
                continue
            with self._lock:
                self.statuses[response.status_code] += 1
            if response.status_code != 503 or time.monotonic() > deadline:
                return response
            try:
                wait_for = float(response.headers.get("Retry-After") or 1)
            except ValueError:
                wait_for = 1
            time.sleep(min(max(wait_for, 0.2), 5))

    def register(self, registration_token: str, name: str) -> str:
        body = {"registrationToken": registration_token, "name": name, "description": "tests"}
        data = response_expect(self.post("register", json=body), 200, "register").json()
        self.runner_token = data["runnerToken"]
        return self.runner_token

    def unregister(self) -> None:
        response_expect(
            self.post("unregister", json={"runnerToken": self.runner_token}), 204, "unregister"
        )

    def request_jobs(self) -> list[dict]:
        body = {"runnerToken": self.runner_token, "jobTypes": self.job_types}
        data = response_expect(self.post("jobs/request", json=body), 200, "jobs/request").json()
        return data["availableJobs"]

    def accept(self, job_uuid: str) -> dict | None:
        """The accepted job (with its jobToken), or None on the quiet race: like the runner, any
        refusal whose code is ``runner_job_not_in_pending_state`` (PeerTube answers 400)."""
        response = self.post(f"jobs/{job_uuid}/accept", json={"runnerToken": self.runner_token})
        if response.status_code >= 400 and response_code(response) == NOT_PENDING:
            return None
        job = response_expect(response, 200, "accept").json()["job"]
        self._event("accept", job_uuid)
        return job

    def _job_body(self, job: dict, **extra) -> dict:
        return {"runnerToken": self.runner_token, "jobToken": job["jobToken"], **extra}

    def update(self, job: dict, progress: int | None) -> None:
        """``progress`` None: no progress field (peertube-runner's transcription updates)."""
        body = self._job_body(job) if progress is None else self._job_body(job, progress=progress)
        response_expect(self.post(f"jobs/{job['uuid']}/update", json=body), 204, "update")

    def error(self, job: dict, message: str) -> None:
        body = self._job_body(job, message=message[:ERROR_MESSAGE_MAX] or "Unknown error")
        response_expect(self.post(f"jobs/{job['uuid']}/error", json=body), 204, "error")
        self._event("error", job["uuid"])

    def abort(self, job: dict, reason: str = "test abort") -> None:
        body = self._job_body(job, reason=reason)
        response_expect(self.post(f"jobs/{job['uuid']}/abort", json=body), 204, "abort")

    def download(self, job: dict, destination: Path) -> Path:
        """POST the videoFileUrl with a JSON body; a 301/302/303 becomes a bare GET, like the
        runner's fetch."""
        url = job["payload"]["input"]["videoFileUrl"]

        def fetch():
            response = self.session.post(
                url, json=self._job_body(job), allow_redirects=False, timeout=self.http_timeout
            )
            if response.status_code in REDIRECTS_AS_GET:
                location = urljoin(url, response.headers["Location"])
                response = requests.get(location, stream=True, timeout=self.http_timeout)
            return response

        response = self.patiently(fetch)
        response_expect(response, 200, "download of the source")
        with open(destination, "wb") as handle:
            for chunk in response.iter_content(1 << 20):
                handle.write(chunk)
        return destination

    def success(self, job: dict, video_file: Path, playlist_file: Path) -> None:
        url = f"{self.base_url}/api/v1/runners/jobs/{job['uuid']}/success"

        def send():  # the files are opened again for each attempt
            with open(video_file, "rb") as video, open(playlist_file, "rb") as playlist:
                files = {
                    "payload[videoFile]": (video_file.name, video, "video/mp4"),
                    "payload[resolutionPlaylistFile]": (
                        playlist_file.name,
                        playlist,
                        "application/vnd.apple.mpegurl",
                    ),
                }
                return self.session.post(
                    url, data=self._job_body(job), files=files, timeout=self.http_timeout
                )

        response = self.patiently(send)
        response_expect(response, 204, "success")
        self._event("success", job["uuid"])
        self.completed.append(job)

    def success_transcription(self, job: dict, vtt_file: Path, language: str | None) -> None:
        body = self._job_body(job)
        if language is not None:
            body["payload[inputLanguage]"] = language
        with open(vtt_file, "rb") as vtt:
            files = {"payload[vttFile]": (vtt_file.name, vtt, "text/vtt")}
            response = self.post(f"jobs/{job['uuid']}/success", data=body, files=files)
        response_expect(response, 204, "success")
        self._event("success", job["uuid"])
        self.completed.append(job)


def response_code(response: requests.Response):
    """The problem document's ``code`` (None when the body is not one)."""
    try:
        return response.json().get("code")
    except ValueError:
        return None
