"""Idle slot-seconds of a fleet of dev runners while jobs waited (issue 18, point 3).

The figure a fleet wastes: at each instant, ``min(free slots, jobs waiting)``, summed over
time. A job waits from the moment it became pending until a runner accepted it (the server's
rows); a slot is busy from its runner's accept to the end of that job (the client's
``slots``). Shared by the fleet test and ``bench/scheduling.py`` so both count the same way.
"""

from __future__ import annotations

from collections.abc import Iterable


def idle_slot_seconds(
    *, slots: Iterable[tuple[float, float | None]], capacity: int, waits, until: float
) -> float:
    """``slots``: (accepted, finished or None) wall times of every job held, all runners
    together; ``capacity``: the fleet's slots; ``waits``: (pending since, accepted or None)
    of every job; ``until``: where an open interval ends."""
    slots = [(start, end if end is not None else until) for start, end in slots]
    waits = [(start, end if end is not None else until) for start, end in waits]
    edges = sorted({t for pair in (*slots, *waits) for t in pair if t <= until})
    idle = 0.0
    for left, right in zip(edges, edges[1:], strict=False):
        middle = (left + right) / 2
        busy = sum(1 for start, end in slots if start <= middle < end)
        waiting = sum(1 for start, end in waits if start <= middle < end)
        idle += max(0, min(capacity - busy, waiting)) * (right - left)
    return idle
