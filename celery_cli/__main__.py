"""Entry point for `python -m celery_cli`."""

from .cli import main

main()
