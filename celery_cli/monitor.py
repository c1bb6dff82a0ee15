"""Flower, the stack's web monitor (`tcel up --flower`): where it answers, its login, a browser opened on it."""

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
