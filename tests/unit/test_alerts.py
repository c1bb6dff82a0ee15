"""docs/alerts.yml, the alert rules shipped for the exporter, checked and unit-tested with Prometheus's own
`promtool` (Debian's prometheus package, which scripts/lib.sh installs): skipped without it on a developer's
machine, failed under CI=true."""

from __future__ import annotations

import subprocess

from tests.conftest import REPO
from tests.tools import required_tool

DOCS = REPO / "docs"


def test_the_alert_rules_are_valid_and_pass_their_tests() -> None:
    promtool = required_tool("promtool", "Debian's prometheus package (scripts/lib.sh installs it)")
    checked = subprocess.run([promtool, "check", "rules", "alerts.yml"], cwd=DOCS, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run([promtool, "test", "rules", "alerts-test.yml"], cwd=DOCS, capture_output=True, text=True)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_has_a_test() -> None:
    import re

    rules = set(re.findall(r"^\s+- alert: (\w+)", (DOCS / "alerts.yml").read_text(), re.M))
    tested = set(re.findall(r"alertname: (\w+)", (DOCS / "alerts-test.yml").read_text()))
    assert rules and rules == tested
