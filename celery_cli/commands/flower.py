"""`tcel flower`: where the stack's Flower answers and how to log in, or a browser opened on it."""

from __future__ import annotations

from typing import Annotated

import typer

from ..endpoints import Target
from ..output import Output
from .options import Json, which_stack


@which_stack()
def flower(
    target: Target,
    open_: Annotated[
        bool, typer.Option("--open", help="Open Flower in a browser, when this machine has one to open.")
    ] = False,
    show_password: Annotated[
        bool, typer.Option("--show-password", help="Print Flower's password in full (masked otherwise).")
    ] = False,
    json: Json = False,
) -> None:
    """Print the URL of the stack's Flower (up --flower) and its login; --open opens it in a browser.

    The URL goes to stdout; the user and the password, masked unless --show-password, to stderr. The login
    is kept with the stack's other secrets (TCEL_FLOWER_USER, TCEL_FLOWER_PASSWORD in the state file).
    """
    from ..credentials import mask, state_file
    from ..monitor import flower_access, open_browser
    from ..stack import open_stack
    from ..stack.base import flower_dict

    out = Output(json)
    stack = open_stack(target.project)
    access = flower_access(stack)
    opened = open_browser(access.flower_url()) if open_ else None
    if json:
        out.data(
            {
                **flower_dict(access, show_password),
                "opened": opened,
                "credentials_file": str(state_file(target.project)),
            }
        )
        return
    out.line(access.flower_url())
    out.info(f"  user     {access.flower_user}")
    out.info(
        f"  password {access.flower_password}"
        if show_password
        else f"  password {mask(access.flower_password)}  (--show-password prints it)"
    )
    if opened:
        out.success(f"opened {access.flower_url()} in a browser: log in as {access.flower_user}")
    elif open_:
        out.warn(f"no browser to open on this machine: open {access.flower_url()} yourself")


def register(app: typer.Typer) -> None:
    app.command()(flower)
