"""Finding a project's Celery app by reading its files, as `celery -A` would find it, without importing them."""

from __future__ import annotations

from pathlib import Path

import pytest

from celery_cli.errors import ExitCode, UsageError
from celery_cli.project_app import candidates, declared_dependencies, find_app

PACKAGE_APP = """\
from celery import Celery

app = Celery('proj', broker='amqp://', backend='rpc://', include=['proj.tasks'])
"""
DJANGO_MANAGE = """\
import os
import sys

def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "site_conf.settings")
    from django.core.management import execute_from_command_line
    execute_from_command_line(sys.argv)
"""


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


@pytest.fixture(autouse=True)
def no_app_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TCEL_APP", raising=False)


def test_next_steps_package_is_found_as_celery_minus_a_finds_it(tmp_path: Path) -> None:
    write(
        tmp_path, {"proj/__init__.py": "", "proj/celery.py": PACKAGE_APP, "proj/tasks.py": "from .celery import app\n"}
    )
    app = find_app(tmp_path)
    assert (app.name, app.source, app.template) == ("proj", "found in proj/celery.py", False)


def test_the_seed_layout_is_the_tasks_module(tmp_path: Path) -> None:
    write(tmp_path, {"tasks.py": "from celery import Celery\napp = Celery('tasks')\n", "celeryconfig.py": "x = 1\n"})
    assert find_app(tmp_path).name == "tasks"


def test_the_repository_s_own_layout_is_its_tasks_module() -> None:
    root = Path(__file__).resolve().parents[2]
    assert [c.name for c in candidates(root)] == ["tasks"]


def test_a_module_with_an_instance_of_another_name_and_an_annotated_one(tmp_path: Path) -> None:
    write(tmp_path, {"worker.py": "import celery\nqueue_app: celery.Celery = celery.Celery('w')\n"})
    assert find_app(tmp_path).name == "worker"
    write(tmp_path, {"worker.py": "import celery\none = celery.Celery('a')\ntwo = celery.Celery('b')\n"})
    assert [c.name for c in candidates(tmp_path)] == ["worker:one", "worker:two"]


def test_an_app_in_a_package_module_is_named_by_its_dotted_path(tmp_path: Path) -> None:
    write(tmp_path, {"service/__init__.py": "", "service/jobs/__init__.py": "", "service/jobs/runner.py": PACKAGE_APP})
    assert find_app(tmp_path).name == "service.jobs.runner"


def test_a_reexport_is_not_a_second_app(tmp_path: Path) -> None:
    write(
        tmp_path,
        {"proj/__init__.py": "from .celery import app as celery_app\n", "proj/celery.py": PACKAGE_APP},
    )
    assert [c.name for c in candidates(tmp_path)] == ["proj"]


def test_apps_inside_functions_tests_virtualenvs_and_hidden_folders_do_not_count(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "helpers.py": "from celery import Celery\ndef make():\n    return Celery('x')\n",
            "tests/__init__.py": "",
            "tests/conftest.py": PACKAGE_APP,
            "test_app.py": PACKAGE_APP,
            ".venv/lib/celery.py": PACKAGE_APP,
            "venv/pyvenv.cfg": "home = /usr\n",
            "venv/__init__.py": PACKAGE_APP,
            "node_modules/x/celery.py": PACKAGE_APP,
            "broken.py": "app = Celery(\n",
        },
    )
    app = find_app(tmp_path)
    assert (app.name, app.template, app.source) == ("tasks", True, "tcel's template")


def test_two_apps_and_no_choice_names_both_and_exits_2(tmp_path: Path) -> None:
    write(tmp_path, {"proj/__init__.py": "", "proj/celery.py": PACKAGE_APP, "other.py": PACKAGE_APP})
    with pytest.raises(UsageError) as refused:
        find_app(tmp_path)
    assert refused.value.exit_code == ExitCode.USAGE
    assert "2 Celery apps: other (other.py), proj (proj/celery.py)" in str(refused.value)
    assert "--app" in str(refused.value) and "\n" not in str(refused.value)


def test_the_choice_wins_in_order_option_environment_remembered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, {"proj/__init__.py": "", "proj/celery.py": PACKAGE_APP, "other.py": PACKAGE_APP})
    assert find_app(tmp_path, remembered="other").source == "remembered"
    monkeypatch.setenv("TCEL_APP", "proj")
    assert (find_app(tmp_path, remembered="other").name, find_app(tmp_path).source) == ("proj", "TCEL_APP")
    chosen = find_app(tmp_path, option="other:app", remembered="proj")
    assert (chosen.name, chosen.source, chosen.module) == ("other:app", "--app", "other")


def test_a_name_celery_cannot_take_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"'proj/celery\.py' from --app is not a Celery app name"):
        find_app(tmp_path, option="proj/celery.py")


def test_django_settings_and_database_come_from_manage_py_and_the_settings(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "manage.py": DJANGO_MANAGE,
            "site_conf/__init__.py": "from .celery import app as celery_app\n",
            "site_conf/celery.py": PACKAGE_APP,
            "site_conf/settings.py": "DATABASES = {'default': {'ENGINE': 'django.db.backends.sqlite3'}}\n",
        },
    )
    app = find_app(tmp_path)
    assert (app.name, app.django_settings, app.database_engine) == (
        "site_conf",
        "site_conf.settings",
        "django.db.backends.sqlite3",
    )


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({}, (None, False)),
        ({"requirements.txt": "humanize==4.12.3\n"}, ("requirements.txt", False)),
        ({"requirements.txt": "# pinned\nCelery[redis]==5.4.0  # ours\n"}, ("requirements.txt", True)),
        ({"requirements.txt": "celery>=5.3\n-r base.txt\n"}, ("requirements.txt", False)),
        (
            {"pyproject.toml": '[project]\nname = "p"\ndependencies = ["celery~=5.4", "humanize"]\n'},
            ("pyproject.toml", True),
        ),
        (
            {"pyproject.toml": '[project]\nname = "p"\ndependencies = ["celery-redbeat==2.0"]\n'},
            ("pyproject.toml", False),
        ),
        ({"pyproject.toml": "[tool.x]\ny = 1\n"}, (None, False)),
        ({"pyproject.toml": "not toml ["}, (None, False)),
    ],
)
def test_declared_dependencies_and_a_celery_pin(tmp_path: Path, files: dict[str, str], expected: tuple) -> None:
    write(tmp_path, files)
    assert declared_dependencies(tmp_path) == expected


def test_the_worker_command_is_kept_until_given_again_and_empty_brings_back_tcel_s(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated_config: Path
) -> None:
    from celery_cli import credentials
    from celery_cli.commands.up_options import up_options
    from celery_cli.endpoints import Target

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    write(tmp_path, {"tasks.py": "from celery import Celery\napp = Celery('tasks')\n"})
    target = Target(project_dir=tmp_path, project_name="commandkept")
    credentials.save(target.project, credentials.generate(), {"TCEL_WORKER_COMMAND": "celery -A tasks worker"})
    assert up_options(target).worker_command == ("celery", "-A", "tasks", "worker")
    assert up_options(target, worker_command="celery -A tasks worker -c 2").worker_command[-2:] == ("-c", "2")
    assert up_options(target, worker_command="").worker_command is None  # tcel's own
