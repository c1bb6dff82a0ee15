"""Flower's configuration file, which `celery flower` reads (executes) from its working directory at start.

Flower leaves /metrics open even when basic auth is on (its docs list it as exempt, with /healthcheck):
behind tcel's generated login, metrics are asked for the same login as every page and API call, since they
name every task and worker. /healthcheck stays open: it says only "OK".
"""

from flower.views import monitor
from tornado import web

monitor.Metrics.get = web.authenticated(monitor.Metrics.get)
