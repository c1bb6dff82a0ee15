"""docs/cli.md is the `--help` of every command as the code has it now."""

from celery_cli import reference


def test_the_command_reference_is_fresh() -> None:
    stale = reference.PAGE.read_text() != reference.render()
    assert not stale, f"docs/cli.md is stale: regenerate it with `{reference.REGENERATE}` and commit it"


def test_the_reference_lists_every_command_and_subcommand() -> None:
    page = reference.render()
    for heading in ("## tcel up\n", "## tcel inspect active\n", "## tcel control shutdown\n"):
        assert heading in page
    assert "\x1b[" not in page  # no colour codes
    assert max(len(line) for line in page.splitlines()) <= reference.WIDTH
