"""The worker image of any project, as files (no engine): the Dockerfile tcel writes for an app without one,
the project's own Dockerfile with tcel's worker side on top, tcel's template; what `up` tells from the
workers' reports; the app chosen on the command line."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from typer.testing import CliRunner

from celery_cli.cli import app as cli
from celery_cli.project_app import ProjectApp, find_app
from celery_cli.settings import TEMPLATE_DIR, Project
from celery_cli.stack.worker_image import WorkerImage, worker_image
from celery_cli.worker_report import WorkerReport, findings, read_when_reported


def package(directory: Path) -> None:
    (directory / "proj").mkdir()
    (directory / "proj" / "__init__.py").write_text("")
    (directory / "proj" / "celery.py").write_text("from celery import Celery\n\napp = Celery('proj')\n")
    (directory / ".venv").mkdir()
    (directory / ".venv" / "big.py").write_text("")
    (directory / ".git").mkdir()
    (directory / ".git" / "HEAD").write_text("")
    (directory / "node_modules").mkdir()
    (directory / "node_modules" / "x.js").write_text("")


def dockerfile(image: WorkerImage) -> str:
    return image.read().files["Dockerfile"][0].decode()


def test_an_app_without_a_dockerfile_gets_one_with_its_dependencies_first_and_a_non_root_user(tmp_path: Path) -> None:
    package(tmp_path)
    (tmp_path / "requirements.txt").write_text("humanize==4.17.0\n")
    image = worker_image(Project("p", tmp_path), None)
    assert image.app.name == "proj" and image.generated
    files = image.read().files
    assert "proj/celery.py" in files and not any(p.startswith((".venv", ".git", "node_modules")) for p in files)
    assert files[".tcel/deps/requirements.txt"][0] == b"humanize==4.17.0\n"
    assert files[".tcel/worker/entrypoint.sh"][1] == 0o755
    text = dockerfile(image)
    install = text.index("pip install --no-cache-dir -c /tmp/tcel-deps/constraints.txt")
    assert install < text.index("COPY --chown=user:user . ./") < text.index("USER user")
    assert "ENV TCEL_APP=proj\n" in text and "no Celery in this image" not in text
    assert text.endswith('CMD ["celery", "-A", "tcel_worker", "worker", "--loglevel=INFO", "--without-mingle"]\n')


def test_a_project_that_pins_celery_installs_its_own_and_pyproject_dependencies_are_its_layer(tmp_path: Path) -> None:
    (tmp_path / "shop.py").write_text("from celery import Celery\napp = Celery('shop')\n")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "shop"\ndependencies = ["celery==5.5.3", "humanize"]\n')
    image = worker_image(Project("p", tmp_path), None)
    assert image.app.pins_celery
    assert "-c /tmp/tcel-deps/constraints.txt" not in dockerfile(image)
    assert image.read().files[".tcel/deps/requirements.txt"][0] == b"celery==5.5.3\nhumanize\n"


def test_a_project_dockerfile_is_kept_and_tcels_layer_goes_on_top(tmp_path: Path) -> None:
    package(tmp_path)
    own = "FROM python:3.12\nRUN pip install celery\nCOPY . /srv\nCMD celery -A proj worker"
    (tmp_path / "Dockerfile").write_text(own)
    (tmp_path / ".dockerignore").write_text("*\n!proj\n")
    image = worker_image(Project("p", tmp_path), None)
    files = image.read().files
    projects = sorted(p for p in files if not p.startswith(".tcel/"))
    assert projects == ["Dockerfile", "proj/__init__.py", "proj/celery.py"]
    text = dockerfile(image)
    assert text.startswith(own + "\n\n")
    assert "no Celery in this image" in text and 'ENTRYPOINT ["/opt/tcel/entrypoint.sh"]' in text
    given = WorkerImage(image.project, image.app, ("celery", "-A", "proj", "worker", "-P", "solo"))
    assert dockerfile(given).endswith('CMD ["celery", "-A", "proj", "worker", "-P", "solo"]\n')
    assert "no Celery in this image" not in dockerfile(given)


def test_a_directory_without_an_app_runs_tcels_template_and_django_gets_its_settings_module(tmp_path: Path) -> None:
    template = worker_image(Project("p", tmp_path), None)
    assert template.app.template and template.context == TEMPLATE_DIR
    assert "ENV TCEL_APP=tasks\n" in dockerfile(template) and "no Celery" not in dockerfile(template)
    django = WorkerImage(Project("p", tmp_path), ProjectApp("mysite", "--app", django_settings="mysite.settings"))
    assert "ENV TCEL_APP=mysite DJANGO_SETTINGS_MODULE=mysite.settings\n" in dockerfile(django)


def test_the_hooks_run_once_when_the_template_imports_them_under_a_second_name() -> None:
    from celery import signals

    for name in ("worker_hooks", "tcel_worker_hooks_copy"):
        spec = importlib.util.spec_from_file_location(name, TEMPLATE_DIR / "worker_hooks.py")
        assert spec is not None and spec.loader is not None
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
    uids = [key[0] for key, _ in signals.task_received.receivers]
    assert uids.count("tcel-index-received") == 1


ANSWERING = ["celery@worker-1"]


def report(**changes: object) -> WorkerReport:
    values: dict = {
        "hostname": "celery@worker-1",
        "celery": "5.7.0",
        "broker": "amqp://broker:5672",
        "backend": "redis://backend:6379",
        "backend_from_environment": True,
        "kept_by_project": {},
    }
    return WorkerReport(**{**values, **changes})


def test_up_tells_celery_on_each_side_the_settings_a_project_keeps_and_a_forced_backend() -> None:
    app = ProjectApp("proj", "found in proj/celery.py")
    quiet = findings([report()], app, "5.7.0", ANSWERING)
    assert (quiet.notes, quiet.warnings) == ([], [])
    pinned = findings([report(celery="5.5.3")], ProjectApp("proj", "x", pins_celery=True), "5.7.0", ANSWERING)
    assert pinned.notes == ["Celery 5.5.3 in the workers (the project pins it), 5.7.0 in tcel"]
    kept = findings([report(kept_by_project={"task_acks_late": False})], app, "5.7.0", ANSWERING)
    assert kept.notes == ["the project's configuration keeps task_acks_late=False (tcel would set its own)"]
    forced = findings([report(backend="rpc://", backend_from_environment=False)], app, "5.7.0", ANSWERING)
    assert len(forced.warnings) == 1 and "results in rpc://" in forced.warnings[0]
    elsewhere = findings([report(broker="amqp://localhost:5672")], app, "5.7.0", ANSWERING)
    assert "not the stack's" in elsewhere.warnings[0]
    # a report left by a worker that is gone, or by one of another app, says nothing of the stack's workers
    gone = findings([report(hostname="celery@worker-9", backend="rpc://")], app, "5.7.0", ANSWERING)
    assert (gone.notes, gone.warnings) == ([], [])
    stale = findings([report(app="other", backend="rpc://", backend_from_environment=False)], app, "5.7.0", ANSWERING)
    assert (stale.notes, stale.warnings) == ([], [])
    assert findings([report(app="proj", backend="rpc://")], app, "5.7.0", ANSWERING).warnings


def test_two_apps_and_no_choice_are_named_with_exit_2(tmp_path: Path, isolated_config: Path) -> None:
    for name in ("alpha", "beta"):
        (tmp_path / f"{name}.py").write_text(f"from celery import Celery\napp = Celery('{name}')\n")
    result = CliRunner().invoke(cli, ["up", "--project-dir", str(tmp_path), "--project-name", "two"])
    assert result.exit_code == 2
    assert "alpha (alpha.py)" in result.output and "beta (beta.py)" in result.output
    assert find_app(tmp_path, "beta").source == "--app"


def test_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("tcel ")


def test_a_django_database_server_gets_a_clear_note_and_sqlite_none() -> None:
    from celery_cli.worker_report import database_note

    server = ProjectApp("mysite", "x", database_engine="django.db.backends.postgresql")
    note = database_note(server)
    assert note is not None and "django.db.backends.postgresql" in note and "tcel runs no database service" in note
    sqlite = ProjectApp("mysite", "x", database_engine="django.db.backends.sqlite3")
    assert database_note(sqlite) is None


def test_a_link_out_of_the_project_is_refused_naming_it_and_links_inside_are_followed(tmp_path: Path) -> None:
    import pytest

    from celery_cli.errors import ExitCode, ImageError

    home, project = tmp_path / "home", tmp_path / "project"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_rsa").write_text("PRIVATE KEY")
    project.mkdir()
    (project / "tasks.py").write_text("from celery import Celery\napp = Celery('tasks')\n")
    (project / "data").mkdir()
    (project / "data" / "words.txt").write_text("words")
    (project / "words.txt").symlink_to("data/words.txt")
    image = worker_image(Project("p", project), None)
    assert image.read().files["words.txt"][0] == b"words"
    (project / "keys").symlink_to(home / ".ssh")  # a link to a folder: docker-py does not walk into it
    assert not any(path.startswith("keys") for path in image.read().files)
    for link, target in [("creds.py", home / ".ssh" / "id_rsa"), ("data/key", home / ".ssh" / "id_rsa")]:
        (project / link).symlink_to(target)
        with pytest.raises(ImageError, match="leads out of the project") as refused:
            image.read()
        assert str(project / link) in str(refused.value) and refused.value.exit_code == ExitCode.IMAGE
        (project / link).unlink()
    (tmp_path / "empty").mkdir()
    assert worker_image(Project("p", tmp_path / "empty"), None).read().files["tasks.py"][0].startswith(b'"""')


class LateReports:
    """A backend whose worker report lands on the third read, as when up reads right after the ping."""

    def __init__(self, report: str) -> None:
        self.reads = 0
        self.report = report

    def hgetall(self, key: str) -> dict[bytes, bytes]:
        self.reads += 1
        return {b"celery@w1": self.report.encode()} if self.reads >= 3 else {}


def test_up_waits_for_the_report_of_a_worker_that_answered_before_writing_it() -> None:
    late = LateReports('{"celery": "5.4.0", "kept_by_project": {"broker_heartbeat": 30}}')
    reports = read_when_reported(late, ["celery@w1"], patience=5)
    assert [r.hostname for r in reports] == ["celery@w1"] and reports[0].kept_by_project == {"broker_heartbeat": 30}
    assert late.reads == 3
    never = LateReports("{}")
    never.reads = -(10**9)
    assert read_when_reported(never, ["celery@w1"], patience=0.3) == []
