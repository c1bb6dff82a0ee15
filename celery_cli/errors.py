"""The one error type tcel raises for expected failures, and its exit codes."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes, one per kind of failure, so scripts can tell them apart."""

    OK = 0
    FAILURE = 1
    USAGE = 2  # Click's own code for bad arguments
    ENGINE_UNREACHABLE = 3
    SERVICE_UNREACHABLE = 4
    PORT_IN_USE = 5
    TIMEOUT = 6
    IMAGE = 7
    NOT_RUNNING = 8
    TASK_FAILED = 9
    NOT_FOUND = 10
    DEGRADED = 11  # `tcel status`: some part is down or not ready
    INTERRUPTED = 130


class TcelError(Exception):
    """An expected failure: shown as one line on stderr, never as a traceback."""

    exit_code: ExitCode = ExitCode.FAILURE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}: {self.hint}" if self.hint else self.message


class UsageError(TcelError):
    exit_code = ExitCode.USAGE


class EngineUnreachable(TcelError):
    exit_code = ExitCode.ENGINE_UNREACHABLE


class ServiceUnreachable(TcelError):
    """The broker or the backend did not answer."""

    exit_code = ExitCode.SERVICE_UNREACHABLE


class PortInUse(TcelError):
    exit_code = ExitCode.PORT_IN_USE


class BackendRefused(TcelError):
    """The backend answers but refuses what tcel must do there (load the task index's function)."""


class WaitTimeout(TcelError):
    exit_code = ExitCode.TIMEOUT


class ImageError(TcelError):
    """An image could not be pulled or built."""

    exit_code = ExitCode.IMAGE


class NotRunning(TcelError):
    exit_code = ExitCode.NOT_RUNNING


class TaskFailed(TcelError):
    exit_code = ExitCode.TASK_FAILED


class NotFound(TcelError):
    exit_code = ExitCode.NOT_FOUND


def unreachable(service: str, where: str, cause: BaseException | str, hint: str | None = None) -> ServiceUnreachable:
    """The one way to say that the broker or the backend does not answer, and why."""
    reason = str(cause) or type(cause).__name__
    return ServiceUnreachable(f"the {service} at {where} does not answer ({reason})", hint=hint)


def start_or_check(service: str) -> str:
    """The hint for a task command whose broker or backend does not answer."""
    return f"start the stack with 'tcel up', or check --{service}-url"
