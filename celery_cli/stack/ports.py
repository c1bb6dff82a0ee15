"""Which host port each published service gets (one chooser for both engines), and the one error for a port
that something else holds."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import PortInUse

EVERY_INTERFACE = "0.0.0.0"


@dataclass
class PortChooser:
    """Chooses ports on `bind` for one `up` of project `project`. `here`: whether this machine's ports say
    anything (on Swarm, a data node elsewhere publishes on its own). `notes` collects what the user should know
    (a port moved off a taken one)."""

    project: str
    bind: str
    here: bool = True
    notes: list[str] = field(default_factory=list)

    def choose(
        self,
        service: str,
        running: int | None,
        asked: int | None,
        kept: int,
        refuse_taken: bool = False,
        noted: bool = True,
    ) -> int:
        """The port the running service publishes; else the one asked for (refused now if taken and
        `refuse_taken`, else later, by the engine or a check); else the kept one (or the default) while it is
        free, else a free one (`noted` for the user)."""
        if running:
            return running
        if asked:
            if refuse_taken and self.here and not port_free(self.bind, asked):
                raise port_in_use(service, f"port {asked} on {self.bind}")
            return asked
        if not self.here or port_free(self.bind, kept):
            return kept
        chosen = free_port(self.bind)
        if not noted:
            return chosen
        where = "" if self.bind == EVERY_INTERFACE else f" on {self.bind}"
        self.notes.append(
            f"port {kept}{where} is taken: the {service} uses {chosen}, kept for project {self.project} "
            f"(--{service}-port chooses one)"
        )
        return chosen


def port_in_use(service: str, where: str) -> PortInUse:
    """The error for a port of `service` that something else holds; `where` names it ('port 5672 on 127.0.0.1'
    or '127.0.0.1:5672')."""
    return PortInUse(
        f"{where} for the {service} is already in use",
        hint=f"choose another with --{service}-port or TCEL_{service.upper()}_PORT",
    )


def free_port(bind: str) -> int:
    """A port nothing listens on now, as the system picks one."""
    import socket

    with socket.socket(socket.AF_INET6 if ":" in bind else socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((bind, 0))
        port: int = probe.getsockname()[1]
        return port


def port_free(bind: str, port: int) -> bool:
    import socket

    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # as Docker's proxy does: connections of an earlier listener in TIME_WAIT do not block the port
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((bind, port))
        except OSError:
            return False
    return True
