"""`tcel env`'s shell lines, the cache of registered task names behind `call`'s check, and shell completion
from that cache alone: none of them needs a stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from celery_cli import credentials, task_registry
from celery_cli.cli import app
from celery_cli.errors import ExitCode, UsageError
from celery_cli.settings import resolve_project
from celery_cli.shell import export_lines

AWKWARD = "p'a\"s$s`w\\o rd!*"


def test_sh_lines_set_the_values_exactly_whatever_they_contain() -> None:
    lines = export_lines({"CELERY_BROKER_URL": AWKWARD, "OTHER": "plain"}, "sh")
    done = subprocess.run(
        ["sh", "-c", "\n".join(lines) + '\nprintf "%s|%s" "$CELERY_BROKER_URL" "$OTHER"'],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout == f"{AWKWARD}|plain"


def test_fish_and_powershell_lines_quote_so_nothing_expands() -> None:
    assert export_lines({"K": "a'b\\c"}, "fish") == ["set -gx K 'a\\'b\\\\c';"]
    assert export_lines({"K": "a'b$c"}, "powershell") == ["$Env:K = 'a''b$c'"]


PS_QUOTES = "'\u2018\u2019\u201a\u201b"


def powershell_single_quoted(text: str) -> tuple[str, str]:
    """Read a single-quoted string as PowerShell's tokenizer does (any of PS_QUOTES opens and closes it, two in a
    row are one literal quote): the value, and what follows the closing quote."""
    assert text[0] in PS_QUOTES
    value, index = "", 1
    while index < len(text):
        char = text[index]
        if char in PS_QUOTES:
            if index + 1 < len(text) and text[index + 1] in PS_QUOTES:
                value, index = value + char, index + 2
                continue
            return value, text[index + 1 :]
        value, index = value + char, index + 1
    raise AssertionError("unterminated string")


def test_powershell_lines_hold_typographic_quotes_inside_the_string() -> None:
    for value in ["a\u2019; Remove-Item x; \u2018", "\u2018\u2019\u201a\u201b'", AWKWARD]:
        (line,) = export_lines({"K": value}, "powershell")
        assert line.startswith("$Env:K = ")
        read, rest = powershell_single_quoted(line.removeprefix("$Env:K = "))
        assert (read, rest) == (value, "")


@pytest.fixture
def state(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    for key in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND_URL", "TCEL_PROJECT_NAME", "TCEL_PROJECT_DIR"):
        monkeypatch.delenv(key, raising=False)
    return tmp_path


def test_env_prints_the_stacks_urls_in_full_and_needs_a_stack(state) -> None:
    missing = CliRunner().invoke(app, ["env", "--project-dir", str(state), "-p", "demo"])
    assert missing.exit_code == ExitCode.NOT_RUNNING and "tcel up" in missing.output
    saved = credentials.generate().with_ports("127.0.0.1", 25672, 26379)
    credentials.save(resolve_project(state, "demo"), saved)
    shown = CliRunner().invoke(app, ["env", "--project-dir", str(state), "-p", "demo", "--json"])
    assert json.loads(shown.stdout) == {
        "CELERY_BROKER_URL": saved.broker_url(),
        "CELERY_RESULT_BACKEND_URL": saved.backend_url(),
    }
    lines = CliRunner().invoke(app, ["env", "--project-dir", str(state), "-p", "demo"]).stdout.splitlines()
    assert lines == [
        f"export CELERY_BROKER_URL='{saved.broker_url()}'",
        f"export CELERY_RESULT_BACKEND_URL='{saved.backend_url()}'",
    ]


def remember(url: str, tasks: list[str], queues: list[str] | None = None, age: float = 0.0) -> None:
    if queues is None:
        queues = ["celery"]
    registry = task_registry.Registry(["celery@worker-1"], tasks, queues, time.time() - age)
    task_registry._save(url, registry)


def test_a_cached_name_is_checked_without_asking_the_workers(state, monkeypatch) -> None:
    monkeypatch.setattr(task_registry, "ask", lambda *_: pytest.fail("asked the workers despite a fresh cache"))
    remember("amqp://u:p@h:1//", ["tasks.add", "tasks.tsum"])
    assert task_registry.check("amqp://u:p@h:1//", "tasks.add", "celery", lambda: None) is None
    cache = task_registry.cache_file("amqp://u:p@h:1//")
    assert "p@h" not in cache.name and oct(cache.stat().st_mode & 0o777) == "0o600"


def test_an_unknown_name_is_asked_again_then_refused_with_the_known_ones(state, monkeypatch) -> None:
    asked = []

    def ask(url, nodes):
        asked.append(nodes)
        return task_registry.Registry(["celery@worker-1"], ["celery.ping", "tasks.add", "tasks.tsum"], ["celery"], 0)

    monkeypatch.setattr(task_registry, "ask", ask)
    remember("amqp://x", ["tasks.add"])
    with pytest.raises(UsageError) as caught:
        task_registry.check("amqp://x", "tasks.ad", "celery", lambda: ["celery@worker-1"])
    assert asked == [["celery@worker-1"]]
    assert caught.value.exit_code == ExitCode.USAGE
    assert "did you mean tasks.add?" in str(caught.value) and "registered: tasks.add, tasks.tsum" in str(caught.value)
    assert "celery.ping" not in str(caught.value) and "--no-check" in str(caught.value)


def test_a_stale_cache_is_asked_again_and_a_queue_nobody_consumes_is_a_warning(state, monkeypatch) -> None:
    monkeypatch.setattr(
        task_registry,
        "ask",
        lambda url, nodes: task_registry.Registry(["celery@worker-1"], ["tasks.add"], ["celery"], time.time()),
    )
    remember("amqp://x", ["tasks.gone"], age=task_registry.CACHE_SECONDS + 1)
    assert task_registry.cached("amqp://x") is None and task_registry.cached("amqp://x", max_age=None) is not None
    warning = task_registry.check("amqp://x", "tasks.add", "emails", lambda: None)
    assert "no running worker consumes queue 'emails'" in warning


def test_no_worker_answering_is_refused_unless_no_check(state, monkeypatch) -> None:
    monkeypatch.setattr(task_registry, "ask", lambda url, nodes: task_registry.Registry([], [], [], time.time()))
    with pytest.raises(UsageError, match=r"no worker answered.*--no-check"):
        task_registry.check("amqp://x", "tasks.add", "celery", list)


def complete(words: str, env: dict[str, str]) -> tuple[list[str], list[str], float]:
    """Run the real CLI's bash completion; return the candidates, the heavy modules it imported, and its time."""
    probe = (
        "import sys, celery_cli.cli\n"
        "try:\n    celery_cli.cli.app(prog_name='tcel')\nexcept SystemExit:\n    pass\n"
        "heavy = ['docker', 'celery', 'kombu', 'redis', 'amqp', 'rich.table']\n"
        "print('HEAVY=' + ','.join(m for m in heavy if m in sys.modules), file=sys.stderr)\n"
    )
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=30,
        env={
            **os.environ,
            **env,
            "_TCEL_COMPLETE": "complete_bash",
            "COMP_WORDS": words,
            "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)),
        },
    )
    heavy = done.stderr.split("HEAVY=")[-1].strip()
    return done.stdout.split(), [m for m in heavy.split(",") if m], time.monotonic() - started


def test_completion_offers_cached_task_and_worker_names_and_imports_nothing_heavy(state) -> None:
    project = resolve_project(state, "demo")
    saved = credentials.generate().with_ports("127.0.0.1", 1, 2)  # nothing listens: completion must not try
    credentials.save(project, saved)
    remember(saved.broker_url(), ["celery.ping", "tasks.add", "tasks.mul", "tasks.tsum"], age=3600)
    env = {"XDG_STATE_HOME": os.environ["XDG_STATE_HOME"], "TCEL_PROJECT_DIR": str(state), "TCEL_PROJECT_NAME": "demo"}
    names, heavy, seconds = complete("tcel call tasks.", env)
    assert names == ["tasks.add", "tasks.mul", "tasks.tsum"] and heavy == []
    assert seconds < 5  # a process start: the budget is the interpreter's, not a round trip's
    assert complete("tcel logs w", env)[0] == ["worker", "worker-1"]
    assert complete("tcel inspect stats --worker ", env)[0] == ["worker-1"]
    assert complete("tcel con", env)[0] == ["control"]
    assert complete("tcel call --pri", env)[0] == ["--priority"]
    other = {**env, "TCEL_PROJECT_NAME": "never-started"}
    assert complete("tcel call tasks.", other)[0] == []
