"""TLS to a broker given as an `amqps://` URL: the server's certificate is verified and its name checked.

py-amqp's `ssl=True` (what an `amqps://` URL became before) wraps the socket in a context that checks no host
name, and Celery's client does the same unless `broker_use_ssl` says otherwise. Here the context is Python's
default one (`ssl.create_default_context`) with `check_hostname` on and the URL's host sent as the server name,
trusting the stack's own authority when TCEL_CA_FILE names its certificate (tcel sets it for a stack of its own
that serves TLS, `tcel env` prints it, a service of the stack finds it in its environment), else the system's
certificate authorities, or the file `SSL_CERT_FILE` names (OpenSSL reads it).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult

if TYPE_CHECKING:
    from .credentials import Credentials

AMQPS_PORT = 5671
CA_VARIABLE = "TCEL_CA_FILE"


def trust(stack: Credentials) -> None:
    """From now on in this process, verify amqps:// against the stack's own authority when the stack serves TLS
    (a stack of tcel's own whose URLs the command uses: Celery's client reads no authority from the URL)."""
    if stack.tls:
        os.environ[CA_VARIABLE] = stack.ca_file


def is_tls(parts: SplitResult) -> bool:
    return parts.scheme == "amqps"


def default_port(parts: SplitResult) -> int:
    return AMQPS_PORT if is_tls(parts) else 5672


def amqp_ssl(parts: SplitResult, ca_file: str = "") -> dict[str, Any] | bool:
    """py-amqp's `ssl` argument (and Celery's `broker_use_ssl`) for the URL: False for amqp://, else the
    options of a verifying context that checks the URL's host name, trusting `ca_file` (else the authority
    TCEL_CA_FILE names, else the system's)."""
    if not is_tls(parts):
        return False
    context: dict[str, Any] = {"check_hostname": True}
    if ca_file or os.environ.get(CA_VARIABLE):
        context["cafile"] = ca_file or os.environ[CA_VARIABLE]
    return {"context": context, "server_hostname": parts.hostname or "localhost"}


def tls_of(broker_url: str, ca_file: str = "") -> dict[str, Any] | bool:
    """Celery's `broker_use_ssl` for a broker URL (False: plain AMQP), trusting `ca_file` if given."""
    from urllib.parse import urlsplit

    return amqp_ssl(urlsplit(broker_url), ca_file)
