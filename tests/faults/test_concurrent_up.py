"""Two `tcel up` at once on one project make one stack, not two."""

import subprocess
import sys


def test_two_ups_at_once_make_one_stack(project) -> None:
    command = [sys.executable, "-m", "celery_cli", "up", "--project-name", project.name]
    env = {**__import__("os").environ, **project.env}
    both = [
        subprocess.Popen(
            command, cwd=project.directory, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    try:
        outcomes = [(p.wait(timeout=600), p.stderr.read()) for p in both]
    finally:
        for p in both:
            p.kill()  # nothing may go on making containers after the test
    assert [code for code, _ in outcomes] == [0, 0], outcomes
    services = sorted(c.labels["io.tcel.service"] for c in project.containers())
    assert services == ["backend", "broker", "worker"]
    assert len(project.networks()) == 1 and len(project.volumes()) == 3  # broker, backend, state
    assert sum("already up" in err for _, err in outcomes) == 1
