"""`tcel up --pull` and the image ages `tcel status` shows, against the real engine. These machines reach no
registry, so every pull fails for real: the engine's own error is what `up --pull` must report."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator
from contextlib import suppress
from datetime import UTC, datetime

import pytest

from celery_cli.errors import ExitCode
from celery_cli.settings import setting
from tests.conftest import StackProject, free_port

UNRESOLVABLE = "tcel-no-such-registry.invalid/rabbitmq:4"  # .invalid never resolves (RFC 2606)
AGED = "2026-01-02T03:04:05.123456789Z"


def test_up_pull_without_a_registry_fails_before_anything_is_made_and_names_each_image(
    project: StackProject, engine
) -> None:
    local = [setting("TCEL_BACKEND_IMAGE"), setting("TCEL_PYTHON_IMAGE")]
    before = {name: engine.images.get(name).id for name in local}
    result = project.tcel("up", "--pull", "--broker-image", UNRESOLVABLE)
    assert result.code == ExitCode.IMAGE, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert lines[0].startswith("error: 'tcel up --pull' could not pull"), result.stderr
    [broker] = [line for line in lines if line.startswith(f"  {UNRESOLVABLE}: ")]
    assert "there is no local copy" in broker and "scripts/offline-images" in broker, broker
    for name in local:  # where a registry answers they may pull; here none does
        failed = [line for line in lines if line.startswith(f"  {name}: ")]
        if failed:
            assert "the local copy is unchanged" in failed[0] and "without --pull" in failed[0], failed
            assert engine.images.get(name).id == before[name]
    assert project.containers() == [] and project.networks() == [] and project.volumes() == []


def test_status_json_gives_each_running_image_the_age_the_engine_gives_it(stack: StackProject, engine) -> None:
    view = json.loads(stack.tcel("status", "--json").stdout)
    assert view["services"]
    now = datetime.now(UTC)
    for row in view["services"]:
        image_id = engine.containers.get(row["name"]).attrs["Image"]
        created = engine.images.get(image_id).attrs["Created"]  # RFC 3339 with nanoseconds
        assert row["image_created"][:19] == created[:19], row
        seconds = (now - datetime.fromisoformat(created[:19] + "+00:00")).total_seconds()
        assert row["image_age_days"] == int(seconds // 86400), row
    old = {row["image"] for row in view["services"] if row["image_age_days"] > 90}
    assert len(view["image_warnings"]) == len(old), view["image_warnings"]


@pytest.fixture
def aged_backend_image(engine) -> Iterator[str]:
    """A copy of the backend's image whose configuration says it was created on 2026-01-02 (docker save, the
    config's `created` rewritten, docker load): a real image, as old as an unrefreshed one gets."""
    import hashlib

    tag = "tcel-test/aged-redis:7"
    saved = io.BytesIO(b"".join(engine.images.get(setting("TCEL_BACKEND_IMAGE")).save(named=True)))
    changed = io.BytesIO()
    with tarfile.open(fileobj=saved) as source, tarfile.open(fileobj=changed, mode="w") as target:
        [manifest] = json.load(source.extractfile("manifest.json"))  # type: ignore[arg-type]
        config = json.load(source.extractfile(manifest["Config"]))  # type: ignore[arg-type]
        config["created"] = AGED
        for member in source.getmembers():  # the layers as they are
            if member.name not in ("manifest.json", "repositories", manifest["Config"]):
                target.addfile(member, source.extractfile(member) if member.isfile() else None)
        config_bytes = json.dumps(config).encode()
        manifest.update(Config=f"{hashlib.sha256(config_bytes).hexdigest()}.json", RepoTags=[tag])
        for name, content in ((manifest["Config"], config_bytes), ("manifest.json", json.dumps([manifest]).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            target.addfile(info, io.BytesIO(content))
    engine.images.load(changed.getvalue())
    try:
        yield tag
    finally:
        engine.images.remove(tag, force=True)


def test_status_warns_once_about_a_running_image_older_than_90_days(aged_backend_image: str, project) -> None:
    up = project.tcel("up", "--backend-image", aged_backend_image)
    assert up.code == 0, up.stderr
    days = int((datetime.now(UTC) - datetime.fromisoformat(AGED[:19] + "+00:00")).total_seconds() // 86400)
    warning = f"image {aged_backend_image} (backend) was created {days} days ago; 'tcel up --pull' refreshes it"
    shown = project.tcel("status")
    assert shown.code == 0, shown.stderr
    assert [line for line in shown.stderr.splitlines() if aged_backend_image in line] == [f"warning: {warning}"]
    view = project.tcel_json("status")
    [backend] = [row for row in view["services"] if row["service"] == "backend"]
    assert backend["image_age_days"] == days > 90
    assert warning in view["image_warnings"]


def test_a_build_with_pull_resolves_its_base_against_the_registry_and_one_without_uses_the_local_copy(
    engine,
) -> None:
    from celery_cli.errors import ImageError
    from celery_cli.stack.images import BuildContext, build, pull

    files = BuildContext({"Dockerfile": (b"ARG PYTHON_IMAGE\nFROM ${PYTHON_IMAGE}\nLABEL io.tcel.test=pull\n", 0o644)})
    python, tag = setting("TCEL_PYTHON_IMAGE"), "tcel-test/pull-build:1"
    steps: list[str] = []
    try:
        build(engine, files, tag, python, "test", "test image", "hint", steps.append)
        assert engine.images.get(tag).labels["io.tcel.test"] == "pull"
        if pull(engine, python, steps.append) is None:  # a registry answers: the build pulls the base too
            build(engine, files, tag, python, "test", "test image", "hint", steps.append, pull=True)
            return
        with pytest.raises(ImageError) as raised:  # none does: the build asked it, and says so
            build(engine, files, tag, python, "test", "test image", "hint", steps.append, pull=True)
        assert "building the test image failed" in str(raised.value)
        assert python.split(":")[0] in str(raised.value), raised.value  # the base it tried to pull
    finally:
        with suppress(Exception):
            engine.images.remove(tag, force=True)


@pytest.fixture
def local_registry(engine) -> Iterator[str]:
    """A registry on a free port of 127.0.0.1 (the stand-in registry image; the engine pulls from a loopback
    registry over plain HTTP): the one kind of registry these machines can pull from."""
    import time
    import urllib.request

    port = free_port()
    container = engine.containers.run(
        setting("TCEL_REGISTRY_IMAGE"), detach=True, ports={"5000/tcp": ("127.0.0.1", port)}, name=f"tceltest-{port}"
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, container.logs(tail=5)
                time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        container.remove(force=True, v=True)


def test_up_pull_brings_a_newer_backend_image_and_replaces_the_backend_on_it(
    local_registry: str, aged_backend_image: str, project: StackProject, engine
) -> None:
    names = {key: f"{local_registry}/{key.lower()}:1" for key in ("TCEL_BROKER_IMAGE", "TCEL_PYTHON_IMAGE")}
    names["TCEL_BACKEND_IMAGE"] = backend = f"{local_registry}/redis:7"
    try:
        for key, name in names.items():  # the registry has today's images
            engine.images.get(setting(key)).tag(name)
            pushed = list(engine.api.push(name, stream=True, decode=True))
            assert not [event for event in pushed if "error" in event], pushed
        engine.images.get(aged_backend_image).tag(backend)  # this engine's copy of the backend's is old
        project.env.update(names)
        up = project.tcel("up")
        assert up.code == 0, up.stderr
        backend_container = engine.containers.get(f"tcel-{project.name}-backend")
        assert backend_container.attrs["Image"] == engine.images.get(aged_backend_image).id

        pulled = project.tcel_json("up", "--pull")
        assert f"pulled {backend}: a newer image" in pulled["notes"], pulled["notes"]
        for key in ("TCEL_BROKER_IMAGE", "TCEL_PYTHON_IMAGE"):
            assert f"pulled {names[key]}: unchanged" in pulled["notes"], pulled["notes"]
        assert pulled["removed"] == [f"tcel-{project.name}-backend"], pulled  # the broker and workers stay
        assert pulled["created"] == [f"tcel-{project.name}-backend"] and pulled["ready"], pulled
        running = engine.containers.get(f"tcel-{project.name}-backend").attrs["Image"]
        assert running == engine.images.get(setting("TCEL_BACKEND_IMAGE")).id
        assert not [w for w in project.tcel_json("status")["image_warnings"] if backend in w]
    finally:
        for name in names.values():
            with suppress(Exception):
                engine.images.remove(name, force=True)
