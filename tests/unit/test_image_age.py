"""`tcel status` warns about images created more than 90 days ago; `tcel up --pull` names each image it could not
pull. The ages are read from image attrs as docker-py returns them; a failing pull needs a registry that
refuses, which is faked here (tests/integration/test_pull.py makes a real engine refuse a real pull)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import docker
import pytest
from docker.models.containers import Container as DockerContainer
from docker.models.images import Image
from docker.models.services import Service as DockerService
from typer.testing import CliRunner

from celery_cli.cli import app
from celery_cli.errors import ExitCode, ImageError
from celery_cli.overview import Overview
from celery_cli.stack import images
from celery_cli.stack.base import ServiceStatus
from celery_cli.stack.containers import status
from celery_cli.stack.containers.docker_api import Container, images_created
from celery_cli.stack.image_age import MAX_IMAGE_AGE_DAYS, age_days, image_warnings
from celery_cli.stack.swarm import status as swarm_status
from celery_cli.stack.swarm.docker_api import Service

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
OLD_ID = "sha256:" + "a" * 64
NEW_ID = "sha256:" + "b" * 64


def image_attrs(image_id: str, created: str) -> dict[str, Any]:
    """An image's attrs as docker-py's `client.images.get(...).attrs` has them (the engine's inspect)."""
    return {
        "Id": image_id,
        "RepoTags": ["tcel-offline/rabbitmq:4"],
        "RepoDigests": [],
        "Parent": "",
        "Created": created,
        "Config": {"Env": ["PATH=/usr/bin", "RABBITMQ_VERSION=4.0.5"], "Labels": None},
        "Architecture": "amd64",
        "Os": "linux",
        "Size": 180_000_000,
    }


class Images:
    """`client.images` of an engine that has the given images (by id)."""

    def __init__(self, found: dict[str, dict[str, Any]]) -> None:
        self.found = found

    def get(self, name: str) -> Image:
        if name not in self.found:
            raise docker.errors.ImageNotFound(f"No such image: {name}")
        return Image(attrs=self.found[name])


def running(image: str, created: datetime | None, service: str = "broker") -> ServiceStatus:
    return ServiceStatus(service, f"tcel-p-{service}", service, "running", True, image, [], NOW, image_created=created)


def test_images_created_reads_each_images_created_time_and_none_for_a_missing_one() -> None:
    client = SimpleNamespace(
        images=Images(
            {
                OLD_ID: image_attrs(OLD_ID, "2026-08-01T10:15:00.123456789Z"),
                NEW_ID: image_attrs(NEW_ID, "2026-12-05T12:30:26Z"),
            }
        )
    )
    created = images_created(client, [OLD_ID, NEW_ID, "sha256:gone"])  # type: ignore[arg-type]
    assert created == {
        OLD_ID: datetime(2026, 8, 1, 10, 15, 0, 123456, tzinfo=UTC),
        NEW_ID: datetime(2026, 12, 5, 12, 30, 26, tzinfo=UTC),
        "sha256:gone": None,
    }
    assert age_days(created[OLD_ID], NOW) == 126
    assert age_days(created[NEW_ID], NOW) == 0  # created after `now`: not a negative age
    assert age_days(None, NOW) is None


def test_a_container_row_carries_its_images_created_time_and_age() -> None:
    attrs = {
        "Id": "c" * 64,
        "Name": "/tcel-p-broker",
        "Image": OLD_ID,
        "Config": {"Hostname": "broker", "Image": "rabbitmq:4", "Labels": {"io.tcel.service": "broker"}},
        "State": {"Status": "running", "StartedAt": "2026-12-05T11:00:00.5Z", "ExitCode": 0},
        "NetworkSettings": {"Ports": {}},
        "HostConfig": {"PortBindings": {}},
        "RestartCount": 0,
    }
    created = datetime(2026, 8, 1, tzinfo=UTC)
    [row] = status.rows([Container(DockerContainer(attrs=attrs))], {OLD_ID: created})
    assert (row.image, row.image_created) == ("rabbitmq:4", created)
    assert row.as_dict()["image_age_days"] == age_days(created)


def test_an_image_older_than_90_days_gets_one_warning_naming_it_its_age_and_the_fix() -> None:
    old = NOW - timedelta(days=MAX_IMAGE_AGE_DAYS + 10)
    services = [
        running("rabbitmq:4", old),
        running("tcel-worker:1", old, "worker"),
        running("tcel-worker:1", old, "worker"),  # two workers, one image: one line
        running("redis:7", NOW - timedelta(days=MAX_IMAGE_AGE_DAYS, hours=23)),  # 90 days: not yet
        running("python:3.12-slim", None, "flower"),  # age unknown
        ServiceStatus("beat", "tcel-p-beat", "beat", "exited", False, "old:1", [], None, image_created=old),
    ]
    assert image_warnings(services, NOW) == [
        "image rabbitmq:4 (broker) was created 100 days ago; 'tcel up --pull' refreshes it",
        "image tcel-worker:1 (worker) was created 100 days ago; 'tcel up --pull' refreshes it",
    ]


def test_status_warns_on_stderr_and_puts_the_warnings_and_ages_in_its_json(
    isolated_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = datetime.now(UTC) - timedelta(days=200)
    view = Overview("p", "containers", services=[running("rabbitmq:4", created)])
    monkeypatch.setattr("celery_cli.overview.gather", lambda stack: view)
    monkeypatch.setattr("celery_cli.stack.open_stack", lambda project: None)
    runner = CliRunner()
    human = runner.invoke(app, ["status", "--project-dir", str(tmp_path)], env={"NO_COLOR": "1"})
    assert "warning: image rabbitmq:4 (broker) was created 200 days ago; 'tcel up --pull' refreshes it" in (
        human.stderr
    )
    assert "200 days" not in human.stdout
    shown = json.loads(runner.invoke(app, ["status", "--json", "--project-dir", str(tmp_path)]).stdout)
    assert shown["services"][0]["image_age_days"] == 200
    assert shown["services"][0]["image_created"] == created.isoformat()
    assert shown["image_warnings"] == [
        "image rabbitmq:4 (broker) was created 200 days ago; 'tcel up --pull' refreshes it"
    ]


class RefusingRegistry:
    """An engine that has `local` images and whose registry refuses every pull: as an APIError for one name,
    as an error event in the pull's stream for the others (the engine reports both ways)."""

    def __init__(self, local: set[str]) -> None:
        self.local = local
        self.api = SimpleNamespace(pull=self.pull)
        self.images = SimpleNamespace(get=self.get)

    def get(self, name: str) -> SimpleNamespace:
        if name not in self.local:
            raise docker.errors.ImageNotFound(name)
        return SimpleNamespace(id=f"sha256:{name}")

    def pull(self, repository: str, tag: str, stream: bool, decode: bool) -> Any:
        if repository == "rabbitmq":
            raise docker.errors.APIError("500", explanation='Get "https://registry-1.docker.io/v2/": no such host')
        return iter([{"status": f"Pulling from library/{repository}"}, {"error": "manifest unknown"}])


def test_up_pull_tries_every_image_and_names_each_it_could_not_pull() -> None:
    steps: list[str] = []
    client = RefusingRegistry(local={"rabbitmq:4", "redis:7"})
    with pytest.raises(ImageError) as raised:
        images.refresh(client, ["rabbitmq:4", "redis:7", "python:3.12-slim", "redis:7"], steps.append)  # type: ignore[arg-type]
    assert raised.value.exit_code == ExitCode.IMAGE
    first, *lines = str(raised.value).splitlines()
    assert first == "'tcel up --pull' could not pull 3 image(s); nothing was changed"
    assert lines[0].startswith('  rabbitmq:4: Get "https://registry-1.docker.io/v2/": no such host; the local copy')
    assert lines[1].startswith("  redis:7: manifest unknown; the local copy is unchanged")
    assert "without --pull" in lines[1]
    assert lines[2] == f"  python:3.12-slim: manifest unknown; there is no local copy ({images.OFFLINE_HINT})"
    assert "pulling redis:7: Pulling from library/redis" in steps  # each image's progress shown as it comes


def test_a_stand_in_that_cannot_be_pulled_is_said_to_be_refreshed_by_rebuilding_it() -> None:
    line = images.pull_failure("tcel-offline/redis:7", "no such host", local_copy=True)
    assert "the local copy is unchanged" in line and "'scripts/offline-images --rebuild' refreshes it" in line


class SwarmService(DockerService):
    """docker-py's Service of the given attrs, whose tasks are the given task attrs (no engine)."""

    def __init__(self, attrs: dict[str, Any], tasks: list[dict[str, Any]]) -> None:
        super().__init__(attrs=attrs)
        self.task_attrs = tasks

    def tasks(self, filters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        return self.task_attrs


def test_a_swarm_row_carries_the_created_time_of_its_services_image_by_name() -> None:
    image = "tcel-offline/rabbitmq:4"
    spec_image = f"{image}@sha256:{'d' * 64}"  # Swarm adds the digest it resolved
    service = SwarmService(
        {
            "ID": "s1",
            "Spec": {
                "Name": "tcel-p-broker",
                "Labels": {"io.tcel.project": "p", "io.tcel.service": "broker"},
                "TaskTemplate": {"ContainerSpec": {"Image": spec_image, "Env": []}},
                "Mode": {"Replicated": {"Replicas": 1}},
                "EndpointSpec": {"Ports": [{"Protocol": "tcp", "TargetPort": 5672, "PublishedPort": 5672}]},
            },
        },
        [
            {
                "ID": "t1",
                "Slot": 1,
                "NodeID": "n1",
                "DesiredState": "running",
                "Status": {"State": "running", "Timestamp": "2026-12-05T11:00:00.123456789Z"},
                "Spec": {"ContainerSpec": {"Image": spec_image}},
            }
        ],
    )
    created = NOW - timedelta(days=120)
    [row] = swarm_status.rows({"broker": Service(service)}, {"n1": "node-1"}, {image: created})
    assert (row.image, row.image_created, row.node) == (image, created, "node-1")
    assert image_warnings([row], NOW) == [
        f"image {image} (broker) was created 120 days ago; 'tcel up --pull' refreshes it"
    ]
