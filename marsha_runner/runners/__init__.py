"""The one wall around django-peertube-runner-connector.

Every import of the library lives in this app: hardened runner API, socket.io handler,
job creation, the completion adapter and the admin of its models. The rest of the project
talks to ``marsha_runner.runners.services`` only.
"""
