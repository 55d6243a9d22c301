"""The admin's modules are imported by the URLconf and the admin's system checks, not at every
start: a management command does not pay for them, `manage.py check` still checks them all."""

import json
import subprocess
import sys

from tests.migration.conftest import BASE_DIR

PROBE = """
import json, os, sys
import django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marsha_runner.settings")
django.setup()
from django.contrib import admin
from django.core import checks
def state():
    return {"imported": "marsha_runner.runners.admin" in sys.modules,
            "registered": len(admin.site._registry)}
at_start = state()
errors = checks.run_checks(tags=[checks.Tags.admin])
print(json.dumps({"start": at_start, "checked": state(), "errors": [str(e) for e in errors]}))
"""


def run_probe() -> dict:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=BASE_DIR, capture_output=True, text=True, check=True,
        env={"MARSHA_RUNNER_ENV_FILE": "env.d/test", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    return json.loads(done.stdout)


def test_a_start_imports_no_admin_module_and_the_checks_see_them_all():
    probe = run_probe()
    assert probe["start"] == {"imported": False, "registered": 0}
    assert probe["checked"]["imported"]
    assert probe["checked"]["registered"] >= 10  # videos, runners, jobs, tokens, users…
    assert probe["errors"] == []
