"""What every layer may record about itself: log context and Prometheus instruments.

This package sits at the bottom with ``storage`` and ``websocket``: it imports nothing from
the project, so the runners, videos and migration code can say "a job finished" or "this log
line is about video X" without knowing who reads it. Reading is the ``observability`` app's
job (on top, with the shells): it serves ``/metrics``, the probes and the log configuration.
"""
