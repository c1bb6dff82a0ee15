"""The stack's monitors: Flower (`tcel up --flower`: where it answers, its login, a browser opened on it) and the
Prometheus exporter (`tcel up --metrics`: where it answers, its login, a scrape configuration)."""

from __future__ import annotations

from .credentials import Credentials, load
from .errors import NotRunning
from .stack.base import Stack


def flower_access(stack: Stack) -> Credentials:
    """The stack's credentials, Flower's among them, once its Flower container runs; else say how to start it."""
    running = [s for s in stack.status() if s.service == "flower" and s.state == "running"]
    access = load(stack.project)
    if not running or access is None or not access.flower_password:
        raise NotRunning(f"stack {stack.project.name} runs no Flower", hint="start it with 'tcel up --flower'")
    return access


def open_browser(url: str) -> bool:
    """Open `url` in the user's browser (Python's webbrowser: $BROWSER, then the desktop's); False when this
    machine has none to open."""
    import webbrowser

    try:
        browser = webbrowser.get()
    except webbrowser.Error:
        return False
    return bool(browser.open(url))


def metrics_access(stack: Stack) -> Credentials:
    """The stack's credentials, the exporter's among them, once its exporter runs; else say how to start it."""
    running = [s for s in stack.status() if s.service == "metrics" and s.state == "running"]
    access = load(stack.project)
    if not running or access is None or not access.metrics_password:
        raise NotRunning(f"stack {stack.project.name} runs no exporter", hint="start it with 'tcel up --metrics'")
    return access


def scrape_config(project: str, access: Credentials, show_password: bool = False) -> str:
    """A Prometheus scrape configuration for the stack's exporter, to paste under `scrape_configs:`; the
    password masked unless asked for."""
    from .credentials import mask

    password = access.metrics_password if show_password else mask(access.metrics_password)
    host = f"[{access.host}]" if ":" in access.host else access.host
    # an exporter served over HTTPS is verified against the stack's authority
    tls = f"    scheme: https\n    tls_config:\n      ca_file: {access.ca_file}\n" if access.tls else ""
    return (
        f"# tcel's exporter of stack {project}: {access.metrics_url()}\n"
        "scrape_configs:\n"
        f"  - job_name: tcel-{project}\n"
        "    scrape_interval: 15s\n"
        "    scrape_timeout: 10s\n"
        f"{tls}"
        "    basic_auth:\n"
        f"      username: {access.metrics_user}\n"
        f"      password: '{password}'\n"
        "    static_configs:\n"
        f"      - targets: ['{host}:{access.metrics_port}']\n"
        f"        labels: {{stack: {project}}}\n"
    )
