"""Parts of ``marsha_runner/settings.py``, by concept, read from the environment like it.

Apart because one settings module of 500 lines hid each concern among the others: the env file
(``environment``), the storages and the migration of legacy media (``storage``), and the
PeerTube runners and transcoding ladder (``runners``). ``settings.py`` imports every name of
each part, so a setting keeps its name and default and is still read as
``django.conf.settings.NAME``; a part never imports ``settings.py``.
"""
