"""The seed files at the top of the repo and the copies tcel ships for projects without their own."""

import pytest

from celery_cli.settings import TEMPLATE_DIR
from tests.conftest import REPO


@pytest.mark.parametrize("name", ["Dockerfile", "tasks.py", "celeryconfig.py", "worker_hooks.py", ".dockerignore", "constraints.txt"])
def test_shipped_template_matches_the_repository_files(name: str) -> None:
    assert (TEMPLATE_DIR / name).read_text() == (REPO / name).read_text()


def test_worker_image_runs_celery_as_a_non_root_user() -> None:
    dockerfile = (REPO / "Dockerfile").read_text().splitlines()
    user_lines = [line for line in dockerfile if line.startswith("USER ")]
    assert user_lines and user_lines[-1].split()[1] not in ("root", "0")
    assert dockerfile[-1].startswith('CMD ["celery"') and '"worker"' in dockerfile[-1]


def test_celeryconfig_reads_the_seeds_environment_variables(monkeypatch) -> None:
    import importlib.util

    monkeypatch.setenv("CELERY_BROKER_URL", "amqp://u:p@broker:5672//")
    monkeypatch.setenv("CELERY_RESULT_BACKEND_URL", "redis://:p@backend:6379/0")
    spec = importlib.util.spec_from_file_location("celeryconfig_under_test", REPO / "celeryconfig.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.broker_url == "amqp://u:p@broker:5672//"
    assert module.result_backend == "redis://:p@backend:6379/0"
    assert module.accept_content == ["json"]
