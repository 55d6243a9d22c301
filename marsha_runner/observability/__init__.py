"""What operations staff see from outside: ``/metrics``, the ``/healthz`` and ``/readyz``
probes, correlation ids on every request and task, and optional Sentry.

It sits on top with the shells: it reads the selectors of runners, videos, migration and
operations, and the instruments the lower layers record into (``marsha_runner.telemetry``).
"""
