"""A stack's credentials outlive its state file (another HOME, `sudo`, a lost ~/.local/state): `up` recovers
them from the copy it keeps on the engine, and without a copy refuses rather than lock tcel out of the data."""

from __future__ import annotations

from celery_cli import credentials
from celery_cli.settings import resolve_project


def state_file(project):
    return credentials.state_file(resolve_project(project.directory, project.name))


def test_a_lost_state_file_is_recovered_with_the_same_passwords_and_the_data(project) -> None:
    assert project.tcel("up").code == 0
    before = project.connection
    sent = project.tcel_json("add", "2", "3", "--wait")
    assert sent["result"] == 5

    # lost while the stack runs (the case), then again after a down that keeps the data
    for step in ("running", "after down"):
        if step == "after down":
            assert project.tcel("down").code == 0
        state_file(project).unlink()
        up = project.tcel("up")
        assert up.code == 0, up.stderr
        assert "credentials were recovered from the copy in volume" in up.stderr, step
        assert project.connection == before, step
        assert project.tcel_json("result", sent["id"])["result"] == 5, f"{step}: the stored result is kept"
        assert project.tcel("add", "4", "5", "--wait").stdout == "9\n", step


def test_data_without_a_state_file_or_a_copy_is_refused_and_kept(project) -> None:
    assert project.tcel("up", "--no-wait").code == 0
    assert project.tcel("down").code == 0
    project.engine.volumes.get(f"tcel-{project.name}-state-data").remove()
    state_file(project).unlink()
    refused = project.tcel("up")
    assert refused.code == 1, refused.stderr
    last = refused.stderr.strip().splitlines()[-1]
    assert "is missing and the engine holds no copy of it" in last and "restore the file" in last
    assert "Traceback" not in refused.stderr
    assert sorted(v.name for v in project.volumes()) == [
        f"tcel-{project.name}-backend-data",
        f"tcel-{project.name}-broker-data",
    ]
    assert project.containers() == []
