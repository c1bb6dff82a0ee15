"""`tcel metrics`: where the stack's Prometheus exporter answers, its login, and a scrape configuration."""

from __future__ import annotations

from typing import Annotated

import typer

from ..endpoints import Target
from ..output import Output
from .options import Json, which_stack


@which_stack()
def metrics(
    target: Target,
    show_password: Annotated[
        bool,
        typer.Option("--show-password", help="Print the password in full, also in the scrape configuration."),
    ] = False,
    json: Json = False,
) -> None:
    """Print a Prometheus scrape configuration for the stack's exporter (up --metrics), its URL and login.

    The scrape configuration goes to stdout (paste it under Prometheus's scrape_configs); the URL, the user and
    the password, masked unless --show-password, to stderr. The login is kept with the stack's other secrets
    (TCEL_METRICS_USER, TCEL_METRICS_PASSWORD in the state file). What is exported: docs/metrics.md.
    """
    from ..credentials import mask, state_file
    from ..monitor import metrics_access, scrape_config
    from ..stack import open_stack
    from ..stack.base import metrics_dict

    out = Output(json)
    access = metrics_access(open_stack(target.project))
    config = scrape_config(target.project.name, access, show_password)
    if json:
        out.data(
            {
                **metrics_dict(access, show_password),
                "scrape_config": config,
                "credentials_file": str(state_file(target.project)),
            }
        )
        return
    out.info(f"  url      {access.metrics_url()}")
    out.info(f"  user     {access.metrics_user}")
    out.info(
        f"  password {access.metrics_password}"
        if show_password
        else f"  password {mask(access.metrics_password)}  (--show-password prints it, also below)"
    )
    out.line(config.rstrip("\n"))


def register(app: typer.Typer) -> None:
    app.command()(metrics)
