"""Getting the images a stack runs: pulling the broker's and backend's (and with `up --pull` refreshing every
image tcel pulls), building the worker's, Flower's and the exporter's."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from ..errors import ImageError
from ..names import FLOWER_IMAGE_KIND, LABEL_IMAGE, METRICS_IMAGE_KIND
from ..output import Progress

if TYPE_CHECKING:
    import docker


STAND_IN = "tcel-offline/"  # what scripts/offline-images names its images
OFFLINE_HINT = "check the name, or on a machine without a registry run scripts/offline-images"
FLOWER_IMAGE_FILES = Path(__file__).parent / "flower_image"
METRICS_IMAGE_FILES = Path(__file__).parent / "metrics_image"
PACKAGE = Path(__file__).parent.parent
CONSTRAINTS = PACKAGE / "template" / "constraints.txt"
# The tcel modules the exporter imports (celery_cli/exporter.py and what it reuses: the queue reader, remote
# control, the result store); tests/unit/test_metrics.py checks that they import without the rest of tcel.
EXPORTER_MODULES = (
    "__init__",
    "broker_kind",
    "broker_tls",
    "credentials",
    "errors",
    "exporter",
    "names",
    "probes",
    "queues",
    "redis_queues",
    "remote_control",
    "result_store",
    "settings",
    "task_args",
    "task_record",
    "tls_ca",
)
# ... and those the autoscaler (`up --autoscale`, in the same image) imports: its policy and state, and the
# engines' Docker calls it adds and removes workers with
AUTOSCALER_MODULES = (
    "autoscale_policy",
    "autoscale_state",
    "autoscaler",
    "output",
    "project_app",
    "stack/__init__",
    "stack/access_control",
    "stack/base",
    "stack/docker_client",
    "stack/image_age",
    "stack/lock",
    "stack/ports",
    "stack/rollback",
    "stack/specs",
    "stack/tls",
    "stack/containers/__init__",
    "stack/containers/docker_api",
    "stack/containers/secret_files",
    "stack/containers/scaling",
    "stack/swarm/__init__",
    "stack/swarm/docker_api",
    "stack/swarm/scaling",
    "stack/swarm/service_spec",
)


def image_exists(client: docker.DockerClient, name: str) -> bool:
    return _image_id(client, name) is not None


def ensure_pulled(client: docker.DockerClient, name: str, progress: Progress) -> None:
    """Pull an image unless the engine already has it."""
    if image_exists(client, name):
        return
    failed = pull(client, name, progress)
    if failed:
        raise ImageError(f"cannot pull image {name}: {failed}", hint=OFFLINE_HINT)


def pull(client: docker.DockerClient, name: str, progress: Progress) -> str | None:
    """Pull an image from its registry, its layers' progress to `progress`; why it failed, or None."""
    import docker

    repository, _, tag = name.rpartition(":") if ":" in name.split("/")[-1] else (name, "", "latest")
    progress(f"pulling {name}")
    try:
        for event in client.api.pull(repository, tag=tag, stream=True, decode=True):
            if "error" in event:
                return str(event["error"]).strip()
            progress(f"pulling {name}: {event.get('status', '')} {event.get('progress', '')}".strip())
    except docker.errors.APIError as exc:
        return str(exc.explanation or exc).strip()
    return None


def refresh(client: docker.DockerClient, names: list[str], progress: Progress) -> tuple[list[str], set[str]]:
    """`up --pull`: pull every image in `names` from its registry, each tried even when one fails; a note per
    image saying what it got, and the names the pulls changed. Any failure raises one ImageError with a line per
    image that failed, before anything of the stack is made."""
    notes, failures, changed = [], [], set()
    for name in dict.fromkeys(names):
        before = _image_id(client, name)
        failed = pull(client, name, progress)
        if failed:
            failures.append(pull_failure(name, failed, before is not None))
        elif _image_id(client, name) == before:
            notes.append(f"pulled {name}: unchanged")
        else:
            notes.append(f"pulled {name}" + (": a newer image" if before else ""))
            changed.add(name)
    if failures:
        raise ImageError(
            f"'tcel up --pull' could not pull {len(failures)} image(s); nothing was changed\n" + "\n".join(failures)
        )
    return notes, changed


def pull_failure(name: str, reason: str, local_copy: bool) -> str:
    """One line for an image `up --pull` could not pull: what failed, and what to do."""
    if local_copy and name.startswith(STAND_IN):
        return (
            f"  {name}: {reason}; the local copy is unchanged (a stand-in no registry has: "
            "'scripts/offline-images --rebuild' refreshes it, then run 'tcel up' without --pull)"
        )
    if local_copy:
        return (
            f"  {name}: {reason}; the local copy is unchanged (check the network and the registry, or run "
            "'tcel up' without --pull to keep the local copies)"
        )
    return f"  {name}: {reason}; there is no local copy ({OFFLINE_HINT})"


def _image_id(client: docker.DockerClient, name: str) -> str | None:
    import docker

    try:
        return str(client.images.get(name).id)
    except docker.errors.ImageNotFound:
        return None


def context_files(context: Path, patterns: list[str] | None = None) -> list[str]:
    """The files of a build context that `patterns` (else its .dockerignore) let into the build, as docker-py
    selects them."""
    from docker.utils.build import exclude_paths

    if patterns is None:
        ignore = context / ".dockerignore"
        patterns = [p.strip() for p in ignore.read_text().splitlines()] if ignore.is_file() else []
        patterns = [p for p in patterns if p and not p.startswith("#")]
    return sorted(r for r in exclude_paths(str(context), patterns) if (context / r).is_file())


def _refuse_links_out(context: Path, relative: str) -> None:
    """Refuse a file of the context that is, or lies under, a symbolic link to somewhere outside it."""
    root = context.resolve()
    target = (context / relative).resolve()
    if target != root and root not in target.parents:
        raise ImageError(
            f"{context / relative} leads out of the project to {target}: tcel does not put files from outside "
            "the project into the worker image",
            hint="copy the file into the project, or list it in .dockerignore",
        )


@dataclass(frozen=True)
class BuildContext:
    """The files of a build context, read once: the image is named after exactly the bytes it is built from,
    even when an editor saves a file between the two (`tcel up --watch`)."""

    files: dict[str, tuple[bytes, int]]  # path inside the context -> (content, permission bits)

    @classmethod
    def read(cls, context: Path, patterns: list[str] | None = None, links_may_leave: bool = False) -> BuildContext:
        """Read what `patterns` (else the context's .dockerignore) let in; a file deleted meanwhile is left out.
        Symbolic links are followed as far as the context: one that leads out of it (`creds.py -> ~/.ssh/id_rsa`)
        is refused, unless `links_may_leave` (tcel's own template links to the repository's worker files)."""
        files = {}
        for relative in context_files(context, patterns):
            if not links_may_leave:
                _refuse_links_out(context, relative)
            with contextlib.suppress(FileNotFoundError):
                files[relative] = ((context / relative).read_bytes(), (context / relative).stat().st_mode & 0o777)
        return cls(files)

    @classmethod
    def flower(cls) -> BuildContext:
        """The Flower image's context: its Dockerfile and flowerconfig.py, and tcel's own constraints.txt."""
        files = {path.name: path for path in sorted(FLOWER_IMAGE_FILES.iterdir()) if path.is_file()}
        files["constraints.txt"] = CONSTRAINTS
        return cls({name: (path.read_bytes(), 0o644) for name, path in files.items()})

    @classmethod
    def metrics(cls) -> BuildContext:
        """The exporter image's context: its Dockerfile, tcel's constraints.txt and the modules it and the
        autoscaler run."""
        files = {"Dockerfile": METRICS_IMAGE_FILES / "Dockerfile", "constraints.txt": CONSTRAINTS}
        modules = EXPORTER_MODULES + AUTOSCALER_MODULES
        files.update({f"celery_cli/{module}.py": PACKAGE / f"{module}.py" for module in modules})
        return cls({name: (path.read_bytes(), 0o644) for name, path in files.items()})

    def image_name(self, python_image: str, repository: str = "tcel-worker") -> str:
        """Name the image after what goes into it, so a changed tasks.py, Dockerfile or constraints.txt means a
        new image and projects with the same files share one."""
        import hashlib

        digest = hashlib.sha256(python_image.encode())
        for relative, (content, _) in sorted(self.files.items()):
            digest.update(relative.encode() + b"\0" + content + b"\0")
        return f"{repository}:{digest.hexdigest()[:12]}"

    def tar(self) -> BinaryIO:
        import io
        import tarfile

        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w") as tar:
            for relative, (content, mode) in sorted(self.files.items()):
                member = tarfile.TarInfo(relative)
                member.size, member.mode = len(content), mode
                tar.addfile(member, io.BytesIO(content))
        archive.seek(0)
        return archive


@dataclass(frozen=True)
class ServiceImage:
    """An image tcel builds from its own files for a service of the stack (Flower, the exporter)."""

    context: Callable[[], BuildContext]
    repository: str
    kind: str  # LABEL_IMAGE's value
    what: str
    option: str  # the `up` option that adds the service


SERVICE_IMAGES = {
    "flower": ServiceImage(BuildContext.flower, "tcel-flower", FLOWER_IMAGE_KIND, "Flower image", "--flower"),
    "metrics": ServiceImage(BuildContext.metrics, "tcel-metrics", METRICS_IMAGE_KIND, "exporter image", "--metrics"),
}


def service_image_name(service: str, python_image: str) -> str:
    """The image tcel's files make for `service` (flower, metrics) on this Python base."""
    made = SERVICE_IMAGES[service]
    return made.context().image_name(python_image, made.repository)


def build_service_image(
    client: docker.DockerClient, service: str, tag: str, python_image: str, progress: Progress
) -> None:
    """Build Flower's or the exporter's image on the configured Python base, streaming its steps to `progress`."""
    made = SERVICE_IMAGES[service]
    progress(f"building {tag} ({made.what})")
    hint = f"check that the Python base image can install packages from PyPI, then run 'tcel up {made.option}' again"
    build(client, made.context(), tag, python_image, made.kind, made.what, hint, progress)


def build(
    client: docker.DockerClient,
    files: BuildContext,
    tag: str,
    python_image: str,
    kind: str,
    what: str,
    hint: str,
    progress: Progress,
    pull: bool = False,
) -> None:
    """Build `files` with the engine's BuildKit, or its older builder when it has none; with `pull`, as
    `docker build --pull` (every FROM image pulled again)."""
    from . import buildkit

    settings: dict[str, Any] = {
        "tag": tag,
        "buildargs": {"PYTHON_IMAGE": python_image},
        "labels": {LABEL_IMAGE: kind},
        "network_mode": "host",  # the only way a build reaches a package index on some engines
        "pull": pull,
    }
    try:
        buildkit.build(client, files.tar(), **settings, on_step=lambda step: progress(f"building {what}: {step}"))
    except buildkit.StepFailed as failed:
        raise ImageError(f"building the {what} failed at '{failed.step}': {failed.detail}", hint=hint) from None
    except buildkit.Unavailable:
        _build_with_older_builder(client, files, settings, what, hint, progress)


def _build_with_older_builder(
    client: docker.DockerClient,
    files: BuildContext,
    settings: dict[str, Any],
    what: str,
    hint: str,
    progress: Progress,
) -> None:
    import docker

    last = ""
    try:
        stream = client.api.build(
            fileobj=files.tar(), custom_context=True, rm=True, forcerm=True, decode=True, **settings
        )
        for event in stream:
            if "error" in event:
                detail = event["error"].strip().splitlines()[-1]
                raise ImageError(f"building the {what} failed at '{last}': {detail}", hint=hint)
            text = event.get("stream", "").strip()
            if text:
                last = text if text.startswith("Step ") else last
                progress(f"building {what}: {text[:100]}")
    except docker.errors.APIError as exc:
        raise ImageError(f"building the {what} failed: {exc.explanation or exc}", hint=hint) from None
