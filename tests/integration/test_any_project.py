"""Any Celery project on the real engine (issue 22): projects written here, laid out as Celery's and Django's
guides lay them out, each brought up, its own task sent with `call --wait`, seen by `result` and `results`,
reloaded after an edit, and brought down; every image their stacks ran is removed afterwards."""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from celery_cli.settings import setting
from tests.conftest import REPO, StackProject, make_project
from tests.integration.test_watch import RELOAD_TIMEOUT, RELOADED, UP_TIMEOUT, WatchSession, save

Writer = Callable[[Path], None]


def write(directory: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


PACKAGE_TASKS = """\
from .celery import app


@app.task
def add(x, y):
    return x + y


@app.task
def mul(x, y):
    return x * y
"""


def package_app(directory: Path) -> None:
    """Celery's "Next Steps" layout: broker and backend hard-coded to localhost and rpc://, no Dockerfile."""
    write(
        directory,
        {
            "proj/__init__.py": "",
            "proj/celery.py": (
                "from celery import Celery\n\n"
                "app = Celery('proj', broker='amqp://localhost', backend='rpc://', include=['proj.tasks'])\n"
            ),
            "proj/tasks.py": PACKAGE_TASKS,
            # what tcel's default .dockerignore keeps out
            ".venv/lib/huge.py": "raise SystemExit('a virtual environment went into the image')\n",
            ".git/HEAD": "ref: refs/heads/main\n",
        },
    )


def module_app(directory: Path) -> None:
    """One module holding the app and its tasks."""
    write(
        directory,
        {
            "jobs.py": (
                "from celery import Celery\n\n"
                "app = Celery('jobs', broker='amqp://guest@localhost//')\n\n\n"
                "@app.task\ndef double(x):\n    return 2 * x\n"
            ),
        },
    )


DJANGO_SETTINGS = """\
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "not-a-secret"
DEBUG = False
ALLOWED_HOSTS = []
INSTALLED_APPS = ["notes"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "db.sqlite3"}}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = True
CELERY_BROKER_URL = "amqp://guest:guest@localhost:5672//"
CELERY_RESULT_BACKEND = "rpc://"
CELERY_BROKER_HEARTBEAT = 30
"""


def django_project(directory: Path) -> None:
    """Django's layout with Celery's "First steps with Django": the app in mysite/celery.py reading the
    CELERY_ namespace of the settings, a shared task using the ORM on the project's SQLite file."""
    write(
        directory,
        {
            "manage.py": (
                "import os\nimport sys\n\n\ndef main():\n"
                "    os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'mysite.settings')\n"
                "    from django.core.management import execute_from_command_line\n\n"
                "    execute_from_command_line(sys.argv)\n\n\nif __name__ == '__main__':\n    main()\n"
            ),
            "requirements.txt": "django>=5\n",
            "mysite/__init__.py": "from .celery import app as celery_app\n\n__all__ = ('celery_app',)\n",
            "mysite/settings.py": DJANGO_SETTINGS,
            "mysite/celery.py": (
                "import os\n\nfrom celery import Celery\n\n"
                "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'mysite.settings')\n"
                "app = Celery('mysite')\n"
                "app.config_from_object('django.conf:settings', namespace='CELERY')\n"
                "app.autodiscover_tasks()\n"
            ),
            "notes/__init__.py": "",
            "notes/models.py": (
                "from django.db import models\n\n\nclass Note(models.Model):\n"
                "    text = models.CharField(max_length=200)\n"
            ),
            "notes/tasks.py": (
                "from celery import shared_task\n\nfrom .models import Note\n\n\n"
                "@shared_task\ndef remember(text):\n    Note.objects.create(text=text)\n"
                "    return Note.objects.count()\n"
            ),
        },
    )
    # the project's database, as `manage.py migrate` leaves it (Django is not installed on this side)
    with contextlib.closing(sqlite3.connect(directory / "db.sqlite3")) as db:
        db.execute(
            'CREATE TABLE "notes_note" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "text" varchar(200) NOT NULL)'
        )
        db.execute("INSERT INTO notes_note (text) VALUES ('already there')")
        db.commit()


def own_dockerfile(directory: Path) -> None:
    """The package app with a Dockerfile of its own, whose CMD tcel replaces with its worker command."""
    package_app(directory)
    constraints = (REPO / "constraints.txt").read_text()
    write(
        directory,
        {
            "pins.txt": constraints,
            "Dockerfile": (
                f"FROM {setting('TCEL_PYTHON_IMAGE')}\n"
                "COPY pins.txt /tmp/pins.txt\n"
                "RUN pip install --no-cache-dir -c /tmp/pins.txt 'celery[redis]'\n"
                "WORKDIR /srv/app\n"
                "COPY proj ./proj\n"
                'CMD ["celery", "-A", "proj", "worker"]\n'
            ),
        },
    )


def pyproject_app(directory: Path) -> None:
    """A module app whose dependencies are pyproject.toml's [project.dependencies]."""
    write(
        directory,
        {
            "pyproject.toml": ('[project]\nname = "shop"\nversion = "0.1"\ndependencies = ["humanize==4.17.0"]\n'),
            "shop.py": (
                "import humanize\nfrom celery import Celery\n\napp = Celery('shop')\n\n\n"
                "@app.task\ndef price(cents):\n    return humanize.intcomma(cents)\n"
            ),
        },
    )


def seed_layout(directory: Path) -> None:
    """The seed's own layout, as in the repository's root: tasks.py, celeryconfig.py, worker_hooks.py, a Dockerfile."""
    for name in ("tasks.py", "celeryconfig.py", "worker_hooks.py", "Dockerfile", ".dockerignore", "constraints.txt"):
        shutil.copy(REPO / name, directory / name)


@pytest.fixture
def made(engine, tmp_path: Path) -> Iterator[Callable[[Writer], StackProject]]:
    """Write a project into this test's directory and give its StackProject; afterwards its stack goes, and
    every worker image its containers ran."""
    projects: list[StackProject] = []

    def make(writer: Writer) -> StackProject:
        directory = tmp_path / writer.__name__
        directory.mkdir()
        writer(directory)
        projects.append(stack.enter_context(make_project(engine, directory)))
        return projects[-1]

    with contextlib.ExitStack() as stack:
        try:
            yield make
        finally:
            for project in projects:
                RAN.update(worker_images(project))
    for image in RAN:  # not forced: an image another project's container uses (the template's) stays
        with contextlib.suppress(Exception):
            engine.images.remove(image)
    RAN.clear()


RAN: set[str] = set()  # every worker image the test's stacks ran, removed after it


def worker_images(project: StackProject) -> set[str]:
    images = {c.attrs["Config"]["Image"] for c in project.containers() if c.labels.get("io.tcel.service") == "worker"}
    RAN.update(images)
    return images


def up(project: StackProject, *args: str) -> dict:
    result = project.tcel("up", "--json", *args, timeout=UP_TIMEOUT)
    assert result.code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ready"] is True
    worker_images(project)
    return report


def call(project: StackProject, task: str, *args: str) -> dict:
    """`call --wait --json`: the task's record, which must be a success."""
    result = project.tcel("call", task, *args, "--wait", "--timeout", "60", "--json")
    assert result.code == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["state"] == "SUCCESS", record
    worker_images(project)
    return record


def seen_by_result_and_results(project: StackProject, record: dict) -> None:
    shown = project.tcel_json("result", record["id"])
    assert (shown["state"], shown["result"], shown["name"]) == ("SUCCESS", record["result"], record["name"])
    listed = project.tcel_json("results")
    rows = [row for row in listed["tasks"] if row["id"] == record["id"]]
    assert rows and rows[0]["state"] == "SUCCESS", listed


def reloaded_by_up(project: StackProject, path: Path, old: str, new: str) -> None:
    """Edit a file of the app, then `up`: the workers are replaced by ones of the new image."""
    before = worker_images(project)
    save(path, path.read_text().replace(old, new))
    report = up(project)
    assert report["removed"], report
    assert worker_images(project) != before


def down(project: StackProject) -> None:
    gone = project.tcel("down")
    assert gone.code == 0, gone.stderr
    assert project.containers() == []


def test_a_package_app_with_localhost_and_rpc_hard_coded_runs_with_the_stacks_broker_and_backend(made) -> None:
    project = made(package_app)
    report = up(project)
    assert report["app"] == {"name": "proj", "source": "found in proj/celery.py", "template": False}
    assert report["warnings"] == [], report
    record = call(project, "proj.tasks.add", "2", "3")
    assert record["result"] == 5
    seen_by_result_and_results(project, record)
    refused = project.tcel("add", "2", "3")
    assert refused.code == 2 and "has no task 'tasks.add'" in refused.stderr and "proj.tasks.add" in refused.stderr
    # bench: the template's tsum is refused (it would only measure the workers refusing it), the app's own runs
    refused = project.tcel("bench", "-n", "10")
    assert refused.code == 2 and "tasks.tsum' (a task of tcel's template)" in refused.stderr, refused.stderr
    assert "proj.tasks.add" in refused.stderr
    benched = json.loads(
        project.tcel("bench", "-n", "20", "--task", "proj.tasks.add", "--args", "[2, 3]", "--json").stdout
    )
    assert (benched["task"], benched["tasks"], benched["failed"]) == ("proj.tasks.add", 20, 0)
    worker = next(c for c in project.containers() if c.labels.get("io.tcel.service") == "worker")
    listing = worker.exec_run(["sh", "-c", "id -un; ls -a /app"]).output.decode()
    assert listing.startswith("user\n") and ".venv" not in listing and ".git" not in listing, listing

    # tcel's safe settings reach the app, and its hooks run once (the task index has the task, the worker
    # log no duplicate hook)
    settings = worker.exec_run(
        [
            "python",
            "-c",
            "import tcel_worker as w; c = w.app.conf; "
            "print(c.task_acks_late, c.task_reject_on_worker_lost, c.worker_prefetch_multiplier, c.broker_heartbeat)",
        ],
        environment={"PYTHONPATH": "/opt/tcel"},
    ).output.decode()
    assert settings.split() == ["True", "True", "1", "10"], settings

    # up --watch reloads on a change in the package, deep inside it
    session = WatchSession(project)
    try:
        session.wait_for(r"^watching ", UP_TIMEOUT)
        save(project.directory / "proj" / "tasks.py", PACKAGE_TASKS.replace("return x * y", "return x * y * 10"))
        session.wait_for(RELOADED, RELOAD_TIMEOUT)
        assert "proj/tasks.py changed" in session.lines[-1]
        assert call(project, "proj.tasks.mul", "2", "3")["result"] == 60
        assert session.interrupt() == 0
    finally:
        session.kill()
    down(project)


def test_a_single_module_app_remembered_and_a_django_project_on_sqlite(made) -> None:
    module = made(module_app)
    report = up(module)
    assert report["app"]["name"] == "jobs" and report["warnings"] == []
    record = call(module, "jobs.double", "21")
    assert record["result"] == 42
    seen_by_result_and_results(module, record)
    reloaded_by_up(module, module.directory / "jobs.py", "return 2 * x", "return 3 * x")
    assert call(module, "jobs.double", "21")["result"] == 63
    down(module)

    django = made(django_project)
    report = up(django)
    assert report["app"]["name"] == "mysite" and report["warnings"] == [], report
    # the project's own CELERY_BROKER_HEARTBEAT is kept, and up says so
    assert any("broker_heartbeat=30" in note for note in report["notes"]), report["notes"]
    record = call(django, "notes.tasks.remember", '"hello"')
    assert record["result"] == 2, "the ORM wrote the project's SQLite file, beside the row already there"
    seen_by_result_and_results(django, record)
    reloaded_by_up(django, django.directory / "notes" / "tasks.py", "return Note.objects.count()", "return -1")
    assert call(django, "notes.tasks.remember", '"again"')["result"] == -1
    down(django)


def test_a_project_dockerfile_runs_tcels_worker_command_and_one_without_celery_is_named(made) -> None:
    project = made(own_dockerfile)
    report = up(project)
    assert report["app"]["name"] == "proj" and report["warnings"] == []
    record = call(project, "proj.tasks.add", "4", "5")
    assert record["result"] == 9
    seen_by_result_and_results(project, record)
    reloaded_by_up(project, project.directory / "proj" / "tasks.py", "return x + y", "return x + y + 1")
    assert call(project, "proj.tasks.add", "4", "5")["result"] == 10
    down(project)

    dockerfile = project.directory / "Dockerfile"
    dockerfile.write_text(f"FROM {setting('TCEL_PYTHON_IMAGE')}\nWORKDIR /srv/app\nCOPY proj ./proj\n")
    refused = project.tcel("up", timeout=UP_TIMEOUT)
    assert refused.code != 0
    assert f"the image {dockerfile} makes has no Celery" in refused.stderr.strip().splitlines()[-1], refused.stderr
    assert project.containers() == []


def forced_backend(directory: Path) -> None:
    """An app whose code sets its own backend over the environment's, as load_dotenv(override=True) does."""
    write(
        directory,
        {
            "forced.py": (
                "import os\n\nfrom celery import Celery\n\nos.environ['CELERY_RESULT_BACKEND'] = 'rpc://'\n"
                "app = Celery('forced')\n\n\n@app.task\ndef ping():\n    return 'pong'\n"
            ),
        },
    )


def test_an_app_that_forces_its_own_backend_is_warned_about_and_wait_says_why(made) -> None:
    project = made(forced_backend)
    result = project.tcel("up", timeout=UP_TIMEOUT)
    assert result.code == 0, result.stderr
    assert "app stores its results in rpc://" in result.stderr, result.stderr
    waited = project.tcel("call", "forced.ping", "--wait", "--timeout", "3")
    assert waited.code != 0
    assert "cannot be seen: the workers' app stores its results in rpc://" in waited.stderr, waited.stderr
    down(project)


def test_pyproject_dependencies_and_the_seed_layout(made) -> None:
    shop = made(pyproject_app)
    report = up(shop)
    assert report["app"]["name"] == "shop" and report["warnings"] == []
    record = call(shop, "shop.price", "1234567")
    assert record["result"] == "1,234,567"
    seen_by_result_and_results(shop, record)
    reloaded_by_up(shop, shop.directory / "shop.py", "intcomma(cents)", "intcomma(cents * 2)")
    assert call(shop, "shop.price", "1000")["result"] == "2,000"
    down(shop)

    seed = made(seed_layout)
    report = up(seed)
    assert report["app"] == {"name": "tasks", "source": "found in tasks.py", "template": False}
    assert report["warnings"] == []
    added = seed.tcel("add", "2", "3", "--wait", "--json")
    assert added.code == 0, added.stderr
    record = json.loads(added.stdout)
    assert record["result"] == 5
    seen_by_result_and_results(seed, record)
    reloaded_by_up(seed, seed.directory / "tasks.py", "return sum(numbers)", "return -sum(numbers)")
    assert call(seed, "tasks.tsum", "[1, 2]")["result"] == -3
    logs = seed.tcel("logs", "worker", "--tail", "200")
    assert logs.stdout.count("cannot update the task index") == 0
    down(seed)
