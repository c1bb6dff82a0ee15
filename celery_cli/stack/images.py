"""Getting the images a stack runs: pulling the broker's and backend's, building the worker's."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from ..errors import ImageError
from ..names import LABEL_IMAGE, WORKER_IMAGE_KIND
from ..output import Progress
from ..settings import Project

if TYPE_CHECKING:
    import docker

OFFLINE_HINT = "check the name, or on a machine without a registry run scripts/offline-images"


def image_exists(client: docker.DockerClient, name: str) -> bool:
    import docker

    try:
        client.images.get(name)
    except docker.errors.ImageNotFound:
        return False
    return True


def ensure_pulled(client: docker.DockerClient, name: str, progress: Progress) -> None:
    """Pull an image unless the engine already has it."""
    import docker

    if image_exists(client, name):
        return
    repository, _, tag = name.rpartition(":") if ":" in name.split("/")[-1] else (name, "", "latest")
    progress(f"pulling {name}")
    try:
        for event in client.api.pull(repository, tag=tag, stream=True, decode=True):
            if "error" in event:
                raise ImageError(f"cannot pull image {name}: {event['error']}", hint=OFFLINE_HINT)
            progress(f"pulling {name}: {event.get('status', '')} {event.get('progress', '')}".strip())
    except docker.errors.APIError as exc:
        raise ImageError(f"cannot pull image {name}: {exc.explanation or exc}", hint=OFFLINE_HINT) from None


def context_files(context: Path) -> list[str]:
    """The files of a build context that its .dockerignore lets into the build, as docker-py selects them."""
    from docker.utils.build import exclude_paths

    ignore = context / ".dockerignore"
    patterns = [p.strip() for p in ignore.read_text().splitlines()] if ignore.is_file() else []
    patterns = [p for p in patterns if p and not p.startswith("#")]
    return sorted(r for r in exclude_paths(str(context), patterns) if (context / r).is_file())


def worker_image_name(project: Project, python_image: str) -> str:
    """Name the worker image after what goes into it, so a changed tasks.py or Dockerfile means a new image
    and projects with the same files share one."""
    import hashlib

    context = project.build_context
    digest = hashlib.sha256(python_image.encode())
    for relative in context_files(context):
        digest.update(relative.encode() + b"\0" + (context / relative).read_bytes() + b"\0")
    return f"tcel-worker:{digest.hexdigest()[:12]}"


def context_tar(context: Path) -> BinaryIO:
    """The build context as a tar of exactly the hashed files; symbolic links are followed (tcel's own
    template links to the repository's top-level worker files)."""
    import io
    import tarfile

    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w", dereference=True) as tar:
        for relative in context_files(context):
            tar.add(context / relative, arcname=relative, recursive=False)
    archive.seek(0)
    return archive


def build_worker_image(
    client: docker.DockerClient, project: Project, tag: str, python_image: str, progress: Progress
) -> None:
    """Build the worker image from the project's Dockerfile, streaming the build's steps to `progress`."""
    import docker

    context = project.build_context
    dockerfile = context / "Dockerfile"
    hint = f"fix {dockerfile}, then run 'tcel up --build'"
    progress(f"building {tag} from {dockerfile}")
    last = ""
    try:
        stream = client.api.build(
            fileobj=context_tar(context),
            custom_context=True,
            tag=tag,
            buildargs={"PYTHON_IMAGE": python_image},
            labels={LABEL_IMAGE: WORKER_IMAGE_KIND},
            network_mode="host",  # the only way a build reaches a package index on some engines
            rm=True,
            forcerm=True,
            decode=True,
        )
        for event in stream:
            if "error" in event:
                detail = event["error"].strip().splitlines()[-1]
                raise ImageError(f"building the worker image failed at '{last}': {detail}", hint=hint)
            text = event.get("stream", "").strip()
            if text:
                last = text if text.startswith("Step ") else last
                progress(f"building worker image: {text[:100]}")
    except docker.errors.APIError as exc:
        raise ImageError(f"building the worker image failed: {exc.explanation or exc}", hint=hint) from None
