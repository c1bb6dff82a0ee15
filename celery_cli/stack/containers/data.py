"""The broker's data volume remembers which RabbitMQ wrote it: RabbitMQ upgrades a data directory in place
only from the previous minor version with every feature flag on, so `up` refuses, before starting anything,
to run another version on it, and says the two ways out."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...errors import TcelError
from ...names import LABEL_BROKER_IMAGE, LABEL_BROKER_VERSION
from ...settings import Project
from .docker_api import image_environment, volume_labels

if TYPE_CHECKING:
    import docker


def written_by(client: docker.DockerClient, image: str) -> dict[str, str]:
    """The labels a new broker volume gets: the image, and its RabbitMQ version when the image says it."""
    return {LABEL_BROKER_IMAGE: image, LABEL_BROKER_VERSION: rabbitmq_version(client, image) or ""}


def rabbitmq_version(client: docker.DockerClient, image: str) -> str | None:
    """RABBITMQ_VERSION from the image's environment, as the official image (and tcel's stand-in) set it."""
    return image_environment(client, image).get("RABBITMQ_VERSION") or None


def check_broker_volume(client: docker.DockerClient, project: Project, image: str) -> None:
    """Refuse to start `image` on a broker volume that another RabbitMQ version wrote."""
    labels = volume_labels(client, project.volume("broker"))
    if labels is None:
        return
    old_image, old_version = labels.get(LABEL_BROKER_IMAGE), labels.get(LABEL_BROKER_VERSION)
    if not old_image:
        return  # made before tcel recorded it
    new_version = rabbitmq_version(client, image)
    if old_version and new_version:
        if _minor(old_version) == _minor(new_version):
            return
    elif old_image == image:
        return
    was = f"RabbitMQ {old_version} ({old_image})" if old_version else old_image
    now = f"RabbitMQ {new_version} ({image})" if new_version else image
    raise TcelError(
        f"the broker's data in volume {project.volume('broker')} was written by {was}; {now} may not open it",
        hint=f"keep the data with --broker-image {old_image}, or delete it (and the queued tasks) with "
        "'tcel down --volumes', then run 'tcel up' again",
    )


def _minor(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])
