"""The races of issue 15, point 8, that are not the migration's: each test fails on the code
before the fix (e920881) and passes after it."""

import threading

import pytest
from django.core.files.base import ContentFile
from django.db import connection
from django_peertube_runner_connector.models import Runner, RunnerJobState

from marsha_runner.runners import staff
from marsha_runner.runners.models import RunnerJob
from marsha_runner.runners.selectors import transcoding_destinations_finished
from marsha_runner.storage import storage_replace, video_storage
from tests.conftest import require
from tests.runners.factories import REGISTRATION_TOKEN, job_tree, runner_make


@pytest.mark.s3
def test_s3_replace_never_leaves_a_moment_without_the_object(s3_videos):
    """Before: delete, then save; a player reading master.m3u8 in between got a 404. An S3 PUT
    replaces atomically: when the new bytes are sent, the old object must still be there."""
    storage = video_storage()
    key = "vod/abc/video/1/master.m3u8"
    storage_replace(storage, key, ContentFile(b"#EXTM3U old\n"))
    seen_at_put = []
    save = storage.save

    def save_watching(name, content, **kwargs):
        seen_at_put.append(storage.exists(key))
        return save(name, content, **kwargs)

    storage.save = save_watching
    try:
        storage_replace(storage, key, ContentFile(b"#EXTM3U new\n"))
    finally:
        del storage.save
    assert seen_at_put == [True]
    assert storage.open(key).read() == b"#EXTM3U new\n"


@pytest.mark.django_db
def test_a_destination_with_two_trees_is_finished_only_when_both_are():
    """Before: answered per tree, so a launch's finished tree made the destination "finished"
    while the missing renditions' tree still ran."""
    destination = "vod/00000000-0000-4000-8000-000000000001/video/1"
    _first, parent, children = job_tree(directory=destination)
    RunnerJob.objects.filter(pk__in=[parent.pk, children[0].pk]).update(
        state=RunnerJobState.COMPLETED
    )
    _second, running, _none = job_tree(directory=destination, resolutions=(480,))
    RunnerJob.objects.filter(pk=running.pk).update(state=RunnerJobState.PROCESSING)
    assert transcoding_destinations_finished(destinations={destination}) == set()
    RunnerJob.objects.filter(pk=running.pk).update(state=RunnerJobState.COMPLETED)
    assert transcoding_destinations_finished(destinations={destination}) == {destination}


def _waiting_on_a_lock(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cursor.fetchone()
    return bool(row) and row[0] == "Lock"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_revoke_is_one_transaction_a_runner_registering_meanwhile_is_not_orphaned(monkeypatch):
    """Before: the runners were listed outside the transaction that deleted the token, so one
    registering in between was deleted by the cascade with its job left processing without a
    runner. Now the token row is locked before the listing: the registration waits, then
    finds the token gone (refused); no runner, no job is orphaned."""
    import time

    from marsha_runner.runners import protocol
    from marsha_runner.runners.problems import RunnerRefusal

    require(connection.vendor == "postgresql", "needs PostgreSQL row locks")
    runner_make("first")
    token = Runner.objects.get(name="first").runnerRegistrationToken
    _video, parent, _children = job_tree()
    outcome, pids = {}, []

    def register_and_accept():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pids.append(cursor.fetchone()[0])
        try:
            late = protocol.runner_register(registration_token=REGISTRATION_TOKEN, name="late")
            protocol.runner_job_accept(runner_token=late.runnerToken, job_uuid=parent.uuid)
            outcome["registered"] = True
        except RunnerRefusal as refusal:
            outcome["refused"] = refusal.code
        finally:
            connection.close()

    listed = staff.registration_token_runners

    def listing_then_a_registration(*, token):
        runners = list(listed(token=token))
        thread = threading.Thread(target=register_and_accept)
        thread.start()
        deadline = time.monotonic() + 30
        # The registration either completes (nothing holds the token) or waits on our lock.
        while thread.is_alive() and not (pids and _waiting_on_a_lock(pids[0])):
            assert time.monotonic() < deadline, "the registration neither ended nor waited"
            thread.join(0.05)
        outcome["thread"] = thread
        return listed(token=token).filter(pk__in=[runner.pk for runner in runners])

    monkeypatch.setattr(staff, "registration_token_runners", listing_then_a_registration)
    said = staff.registration_token_revoke(token=token)
    outcome["thread"].join(30)
    assert said == "revoked, 1 runner(s) unregistered: first"
    assert not Runner.objects.exists()
    parent.refresh_from_db()
    assert (parent.state, parent.runner_id) == (RunnerJobState.PENDING, None), outcome
    assert outcome.get("refused") in ("invalid_registration_token", "runner_name_taken")
