"""The one wall around django-peertube-runner-connector.

Every import of the library lives in this app: hardened runner API, socket.io handler,
job creation, the completion adapter and the admin of its models. The rest of the project
talks to its service modules only: ``tokens`` (runners and registration tokens),
``transcoding`` (probe, ladder, job tree, outcome), ``renditions`` (missing renditions),
``sources`` (uploaded sources the library keeps), ``staff`` and ``watchdog``.
"""
