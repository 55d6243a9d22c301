"""socket.io for runners: the library's server with a connect handler that refuses strangers.

The library's own handler logs the runner token, raises on a missing ``auth`` and, on
python-socketio >= 5.18, does not refuse unknown tokens (docs/design.md#socket-connect).
Registering ours on the same event replaces it.
"""

import asyncio
import logging
import threading

import redis
import socketio
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.conf import settings
from django.db import connections, transaction
from django_peertube_runner_connector.models import Runner
from django_peertube_runner_connector.socket import sio
from socketio.async_pubsub_manager import AsyncPubSubManager

__all__ = ("sio",)

logger = logging.getLogger(__name__)
NAMESPACE = "/runners"


def _runner_of(token):
    return Runner.objects.filter(runnerToken=token).values_list("id", "name").first()


def runner_room(runner_id) -> str:
    """The socket.io room of one runner's sockets (by id: a token is never a room name)."""
    return f"runner-{runner_id}"


async def connect(sid, environ, auth=None):
    _server_loop_remember()
    token = auth.get("runnerToken") if isinstance(auth, dict) else None
    found = (
        await database_sync_to_async(_runner_of)(token)
        if isinstance(token, str) and token
        else None
    )
    if found is None:
        logger.info("Refused a runner socket %s: missing or unknown runner token.", sid)
        raise socketio.exceptions.ConnectionRefusedError("unknown_runner_token")
    runner_id, name = found
    await sio.enter_room(sid, runner_room(runner_id), namespace=NAMESPACE)
    logger.info("Runner %s connected (sid %s).", name, sid)
    await database_sync_to_async(_connected_add)(sid, name)


async def disconnect(sid, *args):
    logger.info("Runner socket %s disconnected.", sid)
    await database_sync_to_async(_connected_remove)(sid)


sio.on("connect", namespace=NAMESPACE)(connect)
sio.on("disconnect", namespace=NAMESPACE)(disconnect)


# --- Who is connected ---------------------------------------------------------------------------
# Staff are told how many runners a ping reached. Each web process records its runner sockets:
# in one Redis hash shared by every process when Redis is configured, else in this process
# (the only one serving sockets then). A web process killed without its disconnects leaves its
# sockets counted until they reconnect elsewhere (their sid changes) or the key is cleared.

CONNECTED_KEY = "marsha_runner:runner-sockets"
_local_sockets: dict[str, str] = {}
_redis_clients = {}


def _redis_client(url):
    with _redis_lock:
        client = _redis_clients.get(url)
        if client is None:
            client = _redis_clients[url] = redis.Redis.from_url(url, socket_timeout=2)
        return client


def _redis_url():
    return getattr(settings, "DJANGO_PEERTUBE_RUNNER_CONNECTOR_REDIS", None)


def _connected_add(sid, name):
    _local_sockets[sid] = name
    if url := _redis_url():
        try:
            _redis_client(url).hset(CONNECTED_KEY, sid, name)
        except Exception:  # noqa: BLE001 - a count is not worth refusing a runner
            logger.warning("Could not record the runner socket %s in Redis.", sid)


def _connected_remove(sid):
    _local_sockets.pop(sid, None)
    if url := _redis_url():
        try:
            _redis_client(url).hdel(CONNECTED_KEY, sid)
        except Exception:  # noqa: BLE001
            logger.warning("Could not forget the runner socket %s in Redis.", sid)


def runners_connected_count() -> int | None:
    """Runner sockets connected now (every web process); None when it cannot be known."""
    if url := _redis_url():
        try:
            return int(_redis_client(url).hlen(CONNECTED_KEY))
        except Exception:  # noqa: BLE001
            return None
    return len(_local_sockets)


# --- Pings ------------------------------------------------------------------------------------
# The runner never polls (docs/design.md#runner-protocol): a lost "available-jobs" ping is a
# job waiting forever.
# With Redis (DJANGO_PEERTUBE_RUNNER_CONNECTOR_REDIS), pings are published there so every web
# process relays them to its runners, whoever emits them (Celery worker, shell, other process).
# One write-only manager per process: the library's helper builds a new async Redis client per
# ping and never closes it. Without Redis, the ping goes to this process's socket.io server, on
# the event loop that serves it, whatever thread asks.

_server_loop = None
_redis_managers = {}
_redis_lock = threading.Lock()


def _server_loop_remember():
    global _server_loop
    loop = asyncio.get_running_loop()
    if _server_loop is not None and _server_loop is not loop:
        _pubsub_listener_restart()
    _server_loop = loop


def _pubsub_listener_restart():
    """socket.io is served by a new event loop (a server restarted in this process, as the
    tests do): the Redis listener task died with the old loop, so start one on this loop."""
    manager = sio.manager
    if not isinstance(manager, AsyncPubSubManager) or manager.write_only:
        return
    manager.connected = False
    manager.initialize()  # starts the listener task on the running loop


def _redis_manager(url):
    with _redis_lock:
        manager = _redis_managers.get(url)
        if manager is None:
            manager = socketio.RedisManager(url, write_only=True)
            _redis_managers[url] = manager
        return manager


def _emit_local(room=None):
    loop = _server_loop
    if loop is not None and loop.is_running() and not loop.is_closed():
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not loop:
            future = asyncio.run_coroutine_threadsafe(
                sio.emit("available-jobs", namespace=NAMESPACE, room=room), loop
            )
            future.add_done_callback(_log_failure)
            return
    async_to_sync(sio.emit)("available-jobs", namespace=NAMESPACE, room=room)


def _log_failure(future):
    if not future.cancelled() and future.exception() is not None:
        logger.warning("An available-jobs ping failed: %r", future.exception())


def runners_ping(room=None) -> None:
    """Send "available-jobs" to every connected runner (or those of ``room``); never raises
    (logged)."""
    try:
        url = getattr(settings, "DJANGO_PEERTUBE_RUNNER_CONNECTOR_REDIS", None)
        if url:
            _redis_manager(url).emit("available-jobs", data=None, namespace=NAMESPACE, room=room)
        else:
            _emit_local(room)
    except Exception:
        logger.exception("Could not ping the runners.")


# A runner that just accepted (a slot may be free: peertube-runner would wait 2.5 s) or lost an
# accept (it would wait for the next ping) is pinged again, alone, a moment later: after it has
# read the answer, since peertube-runner drops a ping that comes while it is still checking. On
# a loaded machine the answer may be read after the first ping: more follow, each sent only
# while ``needed()`` says so (a job nobody holds waits, and the runner has not asked since);
# by the last one peertube-runner's own re-check (2.5 s after an accept) has come.
RUNNER_REPING_DELAYS = (0.1, 0.4, 0.8, 1.3, 2.0)


def runner_ping_soon(*, runner_id, needed, delays=RUNNER_REPING_DELAYS) -> None:
    """Ping one runner's sockets after each of ``delays`` (seconds) while ``needed()`` (a
    timer thread; never raises)."""

    def ping_if_needed():
        try:
            if needed():
                runners_ping(room=runner_room(runner_id))
        except Exception:
            logger.exception("Could not ping runner %s again.", runner_id)
        finally:
            connections.close_all()  # this timer's thread ends: its connection with it

    for delay in delays:
        timer = threading.Timer(delay, ping_if_needed)
        timer.daemon = True
        timer.start()


def runners_ping_on_commit() -> None:
    """Ping the runners once the current transaction commits (at once outside one): a job
    offered before its commit would be invisible to the runner asking for it."""
    transaction.on_commit(runners_ping)
