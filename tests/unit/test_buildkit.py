"""BuildKit's progress, as the engine streams it (base64 protobuf), is read for step names, errors and output."""

from __future__ import annotations

import pytest

from celery_cli.stack import buildkit


def varint(value: int) -> bytes:
    out = b""
    while True:
        byte, value = value & 0x7F, value >> 7
        out += bytes([byte | (0x80 if value else 0)])
        if not value:
            return out


def field(number: int, value: bytes | int) -> bytes:
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    return varint(number << 3 | 2) + varint(len(value)) + value


TIMESTAMP = field(1, 1_700_000_000) + field(2, 5)


def vertex(digest: str, name: str, started: bool = True, completed: bool = False, error: str = "") -> bytes:
    body = field(1, digest.encode()) + field(2, b"sha256:input") + field(3, name.encode()) + field(4, 1)
    body += field(5, TIMESTAMP) if started else b""
    body += field(6, TIMESTAMP) if completed else b""
    body += field(7, error.encode()) if error else b""
    return field(1, body)


def log(digest: str, text: str) -> bytes:
    return field(3, field(1, digest.encode()) + field(2, TIMESTAMP) + field(3, 1) + field(4, text.encode()))


def test_running_steps_are_named_and_a_failure_keeps_its_last_output_line() -> None:
    steps: dict = {}
    names: list[str] = []
    buildkit._follow(
        vertex("sha256:a", "[1/3] FROM base", completed=True) + vertex("sha256:b", "[2/3] RUN pip"), steps, names.append
    )
    buildkit._follow(
        log("sha256:b", "Collecting x\nERROR: No matching distribution found for x\n"), steps, names.append
    )
    buildkit._follow(vertex("sha256:b", "[2/3] RUN pip", completed=True, error="exit code: 1"), steps, names.append)
    assert names == ["[2/3] RUN pip"]
    assert steps["sha256:b"].error == "exit code: 1"
    assert steps["sha256:b"].output[-1] == "ERROR: No matching distribution found for x"


def test_long_varints_and_fixed_width_fields_are_skipped() -> None:
    message = field(9, 2**40) + varint(10 << 3 | 1) + b"\0" * 8 + varint(11 << 3 | 5) + b"\0" * 4 + field(3, b"name")
    assert list(buildkit._fields(message)) == [(3, b"name")]


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 2**35])
def test_varints_round_trip(value: int) -> None:
    encoded = varint(value)
    assert buildkit._varint(encoded, 0) == (value, len(encoded))


class Refusing:
    """An engine API that refuses BuildKit builds and runs the older builder: a path this machine's engine
    never takes."""

    base_url, api_version = "http+docker://localhost", "1.41"

    def __init__(self, events: list[dict]) -> None:
        self.events = events
        self.built_with: dict = {}

    def post(self, *_, **__):
        return type("Response", (), {"status_code": 400, "text": "buildkit not supported"})()

    def build(self, **settings):
        self.built_with = settings
        return iter(self.events)


def build_on(api: Refusing) -> list[str]:
    from pathlib import Path

    from celery_cli.project_app import find_app
    from celery_cli.settings import TEMPLATE_DIR, Project
    from celery_cli.stack.worker_image import WorkerImage

    seen: list[str] = []
    client = type("Client", (), {"api": api})()
    image = WorkerImage(Project("p", Path(TEMPLATE_DIR)), find_app(Path(TEMPLATE_DIR)))
    image.build(client, "tcel-worker:x", "python:3.12-slim", seen.append)
    return seen


def test_an_engine_without_buildkit_gets_the_older_builder() -> None:
    api = Refusing([{"stream": "Step 1/2 : FROM python"}, {"stream": "Successfully tagged tcel-worker:x"}])
    seen = build_on(api)
    assert api.built_with["tag"] == "tcel-worker:x" and api.built_with["network_mode"] == "host"
    assert any("Step 1/2" in line for line in seen)


def test_the_older_builders_failure_names_its_step() -> None:
    from celery_cli.errors import ImageError

    api = Refusing([{"stream": "Step 7/9 : RUN exit 3"}, {"error": "The command returned a non-zero code: 3"}])
    with pytest.raises(ImageError, match="failed at 'Step 7/9 : RUN exit 3': The command returned a non-zero code: 3"):
        build_on(api)
