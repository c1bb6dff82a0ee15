"""`tcel init` writes a project from the template, and never overwrites a file unless --force."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from celery_cli.cli import app
from celery_cli.settings import TEMPLATE_DIR

PROJECT_FILES = sorted([p.name for p in TEMPLATE_DIR.iterdir() if p.is_file()] + ["requirements.txt"])


def init(*args: str):
    return CliRunner().invoke(app, ["init", *args])


def test_writes_real_files_with_the_templates_contents_into_a_new_directory(tmp_path: Path) -> None:
    target = tmp_path / "new" / "project"
    result = init(str(target))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in target.iterdir()) == PROJECT_FILES
    for name in PROJECT_FILES:
        assert not (target / name).is_symlink()
        if name != "requirements.txt":
            assert (target / name).read_bytes() == (TEMPLATE_DIR / name).read_bytes()
    assert "requirements.txt" in (TEMPLATE_DIR / "Dockerfile").read_text()
    assert all(line.startswith("#") for line in (target / "requirements.txt").read_text().splitlines())


def test_an_empty_existing_directory_is_fine(tmp_path: Path) -> None:
    assert init(str(tmp_path)).exit_code == 0
    assert (tmp_path / "tasks.py").is_file()


def test_refuses_to_overwrite_a_file_naming_it_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "tasks.py").write_text("mine\n")
    result = init(str(tmp_path))
    assert result.exit_code == 2
    assert "tasks.py already exists" in result.output and str(tmp_path) in result.output
    assert "--force" in result.output and "Traceback" not in result.output
    assert (tmp_path / "tasks.py").read_text() == "mine\n"
    assert [p.name for p in tmp_path.iterdir()] == ["tasks.py"], "nothing written when one file is refused"


def test_names_every_file_it_would_overwrite(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "requirements.txt").write_text("requests\n")
    result = init(str(tmp_path))
    assert result.exit_code == 2
    assert "Dockerfile, requirements.txt already exist" in result.output


def test_force_overwrites(tmp_path: Path) -> None:
    (tmp_path / "tasks.py").write_text("mine\n")
    result = init(str(tmp_path), "--force")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "tasks.py").read_bytes() == (TEMPLATE_DIR / "tasks.py").read_bytes()


def test_a_file_where_the_directory_should_be_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("")
    result = init(str(tmp_path / "taken"))
    assert result.exit_code == 2
    assert "is not a directory" in result.output


def test_without_a_directory_it_writes_into_the_current_one(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert init().exit_code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == PROJECT_FILES
