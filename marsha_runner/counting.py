"""Counts that stay cheap at millions of rows: exact up to a bound, estimated beyond.

A count scans what it counts: a million finished jobs, a hundred thousand ready videos. Up to
``COUNT_BOUND`` rows the number is exact (a ``LIMIT`` subquery, through an index that holds
the counted column, so an index-only scan); beyond it, PostgreSQL's planner estimate (EXPLAIN,
no scan). The staff admin's lists, its health panel, ``health_report`` and ``/metrics`` all
count this way. Imports nothing from the project: any layer may use it.
"""

import json
import threading
import time
from collections import OrderedDict

from django.db import connections

# Above this many rows, a count is not worth scanning for: the planner's estimate is shown.
COUNT_BOUND = 10_000
# The planner's estimates come from the table statistics, which change when ANALYZE runs
# (autovacuum, minutes apart): one EXPLAIN per query and minute is enough, so a scrape every
# 15 s or an admin page reloaded does not plan the same queries again.
ESTIMATE_TTL = 60.0
_ESTIMATES_MAX = 256
_estimates: OrderedDict = OrderedDict()
_estimates_lock = threading.Lock()


def bounded_count(queryset, bound: int = COUNT_BOUND) -> int:
    """The exact count up to ``bound``; beyond it the planner's estimate (PostgreSQL) or
    ``bound``. Never scans more than ``bound`` rows."""
    count = queryset.order_by()[: bound + 1].count()
    if count <= bound:
        return count
    return max(bound + 1, planner_estimate(queryset) or 0)


def bounded_counts(counted, bound: int = COUNT_BOUND) -> list[int]:
    """``bounded_count`` of many querysets in one statement (one round trip).

    ``counted``: ``(queryset, column)`` pairs, the column one that the index serving the
    queryset's filter holds (the scan then reads the index alone). All on one database.
    """
    if not counted:
        return []
    parts, params = [], []
    for number, (queryset, column) in enumerate(counted):
        limited = queryset.order_by().values(column)[: bound + 1]
        sql, part_params = limited.query.sql_with_params()
        # Django's compiled SQL, its parameters passed apart; only integers are formatted in.
        part = f"SELECT {int(number)}, count(*) FROM ({sql}) AS counted_{int(number)}"  # noqa: S608
        parts.append(part)
        params.extend(part_params)
    connection = connections[counted[0][0].db]
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), params)
        counts = dict(cursor.fetchall())
    return [
        counts[number]
        if counts[number] <= bound
        else max(bound + 1, planner_estimate(queryset) or 0)
        for number, (queryset, _) in enumerate(counted)
    ]


def planner_estimate(queryset) -> int | None:
    """PostgreSQL's estimate of the rows of ``queryset`` (EXPLAIN, no scan); None elsewhere.
    Kept ``ESTIMATE_TTL`` seconds per query (the statistics it reads change no faster)."""
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return None
    sql, params = queryset.order_by().query.sql_with_params()
    key = (queryset.db, sql, tuple(str(p) for p in params))
    now = time.monotonic()
    with _estimates_lock:
        cached = _estimates.get(key)
        if cached and now - cached[0] < ESTIMATE_TTL:
            return cached[1]
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    estimate = int(plan[0]["Plan"]["Plan Rows"])
    with _estimates_lock:
        _estimates[key] = (now, estimate)
        _estimates.move_to_end(key)
        while len(_estimates) > _ESTIMATES_MAX:
            _estimates.popitem(last=False)
    return estimate
