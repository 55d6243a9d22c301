"""The environment every setting is read from: the env file, then the variables already set.

One env file chosen by ``MARSHA_RUNNER_ENV_FILE`` (default ``env.d/development``, or
``env.d/test`` while pytest runs); variables already set in the environment win over the file.
Apart from ``settings.py`` because each settings part reads ``env`` too, and the file must be
read once, before any of them.
"""

import os
import sys
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent

_default_env_file = "env.d/test" if os.environ.get("PYTEST_VERSION") else "env.d/development"
ENV_FILE = Path(os.environ.get("MARSHA_RUNNER_ENV_FILE", _default_env_file))
if not ENV_FILE.is_absolute():
    ENV_FILE = BASE_DIR / ENV_FILE
if not ENV_FILE.is_file():
    sys.exit(f"marsha_runner: env file {ENV_FILE} does not exist (MARSHA_RUNNER_ENV_FILE).")

env = environ.Env()
environ.Env.read_env(ENV_FILE)
# The dev runner's identity, shared with the PeerTube runner container (seed_runner reads it).
environ.Env.read_env(BASE_DIR / "env.d" / "peertube_runner")
