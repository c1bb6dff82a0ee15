"""The files tcel puts into a container before it starts (its logins, under /run/secrets and the broker's and
backend's configuration), owned by the user the image runs as and readable by that user only."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from docker.models.containers import Container as DockerContainer

OWNER_ONLY = 0o400
# An image without a user (the broker's and backend's) starts as root and its entrypoint drops to a user of its
# own, which must still read its configuration: those files stay readable by every user of the container, as
# before. No other user runs in those containers.
EVERYONE = 0o644


@dataclass(frozen=True)
class Owner:
    uid: int
    gid: int
    mode: int


def owner(container: DockerContainer, configured: str) -> Owner:
    """Who gets the files: the image's user (`configured`, its Config.User: a name or a uid, with an optional
    group) as the container's own /etc/passwd and /etc/group resolve it, mode 0400; root with 0644 for an image
    without a user, or one whose user cannot be resolved."""
    user, _, group = configured.partition(":")
    if not user or user in ("root", "0"):
        return Owner(0, 0, EVERYONE)
    passwd = _entries(container, "/etc/passwd")
    found = next((entry for entry in passwd if user in (entry[0], entry[2])), None)
    uid = int(user) if user.isdigit() else (int(found[2]) if found else None)
    gid = int(found[3]) if found else (uid if uid is not None else None)
    if group:
        groups = _entries(container, "/etc/group")
        named = next((entry for entry in groups if group in (entry[0], entry[2])), None)
        gid = int(group) if group.isdigit() else (int(named[2]) if named else None)
    if uid is None or gid is None:
        return Owner(0, 0, EVERYONE)
    return Owner(uid, gid, OWNER_ONLY)


def _entries(container: DockerContainer, path: str) -> list[list[str]]:
    """The colon-separated lines of a file of the (created, not started) container; [] when it has none."""
    import docker

    try:
        stream, _ = container.get_archive(path)
    except docker.errors.APIError:
        return []
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        member = tar.next()
        content = tar.extractfile(member) if member else None
        text = content.read().decode(errors="replace") if content else ""
    return [line.split(":") for line in text.splitlines() if line.count(":") >= 3]


def tar_of(path: str, content: bytes, who: Owner) -> bytes:
    """A tar of one file at `path` (relative, unpacked at the root), owned by `who`."""
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        member = tarfile.TarInfo(path)
        member.size, member.mode, member.uid, member.gid = len(content), who.mode, who.uid, who.gid
        tar.addfile(member, io.BytesIO(content))
    return archive.getvalue()


def owner_of(path: str, image_owner: Owner, owners: Mapping[str, int]) -> Owner:
    """A file's owner: the uid `owners` gives it alone (a TLS key, read by its server's user: stack/tls.py), else
    the image's owner."""
    uid = owners.get(path)
    return image_owner if uid is None else Owner(uid, uid, OWNER_ONLY)
