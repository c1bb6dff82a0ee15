"""Flower's configuration file, which `celery flower` reads (executes) from its working directory at start,
before it connects to the broker.

The broker's and backend's URLs and the basic-auth login come from files, as the worker's celeryconfig.py
reads its URLs: CELERY_BROKER_URL_FILE, CELERY_RESULT_BACKEND_URL_FILE and TCEL_FLOWER_BASIC_AUTH_FILE name
them (under /run/secrets: put in before start on plain containers, Docker secrets on Swarm), so that no
password is in the container's environment or command. Without those variables, Celery's own
CELERY_BROKER_URL / CELERY_RESULT_BACKEND and Flower's FLOWER_BASIC_AUTH still work.

Flower leaves /metrics open even when basic auth is on (its docs list it as exempt, with /healthcheck):
behind tcel's generated login, metrics are asked for the same login as every page and API call, since they
name every task and worker. /healthcheck stays open: it says only "OK".
"""

import os

from celery import current_app
from flower.views import monitor
from tornado import web


def _secret(variable):
    """The content of the file VARIABLE_FILE names, or None without that variable."""
    path = os.getenv(f"{variable}_FILE")
    if not path:
        return None
    with open(path) as secret:
        return secret.read().strip()


# `celery flower` runs Celery's default app, the current one; its settings load later, keeping these
_urls = {"broker_url": _secret("CELERY_BROKER_URL"), "result_backend": _secret("CELERY_RESULT_BACKEND_URL")}
current_app.conf.update({name: url for name, url in _urls.items() if url})

# A stack that serves TLS: its broker speaks AMQPS, verified (name too) against the stack's authority, whose
# certificate TCEL_CA_FILE names (the backend's rediss:// URL names it itself); Flower serves HTTPS.
if os.getenv("TCEL_CA_FILE"):
    import ssl

    current_app.conf.broker_use_ssl = {
        "ca_certs": os.environ["TCEL_CA_FILE"],
        "cert_reqs": ssl.CERT_REQUIRED,
        "server_hostname": None,  # kombu sends the URL's host and checks it
    }
if os.getenv("TCEL_TLS_CERT_FILE"):
    certfile = os.environ["TCEL_TLS_CERT_FILE"]
    keyfile = os.environ["TCEL_TLS_KEY_FILE"]

_login = _secret("TCEL_FLOWER_BASIC_AUTH")
if _login:
    basic_auth = [_login]

monitor.Metrics.get = web.authenticated(monitor.Metrics.get)

# A worker that is gone (replaced by a reload, removed by `tcel scale`, or a Swarm task rescheduled) is dropped
# from the dashboard and the metrics 10 s after its last heartbeat, instead of staying listed as offline for
# as long as Flower runs ("ghost workers").
purge_offline_workers = 10
