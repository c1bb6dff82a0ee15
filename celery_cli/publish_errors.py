"""What a send of tasks that ended early says: for one task, whether it may be queued; for several, how many
the broker confirmed, refused, left unsettled, and how many were never written."""

from __future__ import annotations

from .credentials import mask_url
from .errors import ExitCode, ServiceUnreachable, TcelError
from .publish_confirms import CONFIRM_TIMEOUT, Confirms


class NotAllSent(TcelError):
    """A send of several tasks that ended early, with what became of them: how many the broker confirmed, the
    ids it refused and those written but never settled (each may or may not be queued), how many were never
    written (None: the rest of a stream)."""

    def __init__(
        self,
        message: str,
        *,
        hint: str,
        exit_code: ExitCode,
        confirmed: int,
        refused: list[str],
        unconfirmed: list[str],
        unsent: int | None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.exit_code = exit_code
        self.confirmed = confirmed
        self.refused = refused
        self.unconfirmed = unconfirmed
        self.unsent = unsent


def ended(
    broker_url: str,
    confirms: Confirms,
    blocked: str | None,
    name: str,
    exc: Exception | None,
    confirmed: int,
    unsent: int | None,
) -> TcelError:
    """The one line on how a send of `name` to `broker_url` ended early (`blocked`: the broker's reason while
    it blocks publishers): for a single task, what became of it; else the counts."""
    import amqp

    where = mask_url(broker_url)
    if exc is None:
        cause = "the broker refused it"
    else:  # py-amqp's own text leads with a class and method id pair: its reply text says it plainly
        cause = getattr(exc, "reply_text", None) or str(exc) or type(exc).__name__
    if blocked is not None and "blocks publishers" not in cause:  # a write that timed out, say
        cause += f"; the broker blocks publishers ({blocked})"
    refused = exc is None or isinstance(exc, amqp.exceptions.PreconditionFailed)
    unsettled = confirms.unconfirmed
    if confirmed + len(confirms.refused) + len(unsettled) == 0 and not refused:
        return not_sent(broker_url, name if unsent in (None, 1) else f"{unsent} x {name}", exc)
    if confirmed == 0 and len(confirms.refused) + len(unsettled) == 1 and unsent == 0:  # one task
        task_id = (confirms.refused or unsettled)[0]
        if unsettled and blocked is not None:
            return _blocking(broker_url, name, task_id, blocked)
        if confirms.refused or refused:
            return TcelError(f"the broker at {where} refused {name} {task_id}: {cause}; it is not queued")
        return ServiceUnreachable(
            f"{name} {task_id} went to the broker at {where} but was not confirmed ({cause}): it may or may "
            "not be queued",
            hint=f"see 'tcel result {task_id}' before sending it again",
        )
    parts = [f"{confirmed} confirmed"]
    if confirms.refused:
        parts.append(f"{len(confirms.refused)} refused (not queued)")
    if unsettled:
        parts.append(f"{len(unsettled)} written but not confirmed (may or may not be queued)")
    if unsent is None:
        parts.append("the rest not sent")
    elif unsent:
        parts.append(f"{unsent} not sent")
    return NotAllSent(
        f"sending {name} to the broker at {where} stopped ({cause}): {', '.join(parts)}",
        hint=("the broker is short of memory or disk ('tcel logs broker' says which); " if blocked else "")
        + "nothing was published twice; see 'tcel results' before sending any again",
        exit_code=ExitCode.FAILURE if refused else ExitCode.SERVICE_UNREACHABLE,
        confirmed=confirmed,
        refused=list(confirms.refused),
        unconfirmed=unsettled,
        unsent=unsent,
    )


def _blocking(broker_url: str, name: str, task_id: str, reason: str) -> ServiceUnreachable:
    """The broker blocked this connection (a memory or disk alarm) and did not confirm within the timeout."""
    return ServiceUnreachable(
        f"{name} {task_id} was not confirmed within {CONFIRM_TIMEOUT:g}s: the broker at "
        f"{mask_url(broker_url)} is blocking publishers ({reason}), so it may or may not be queued",
        hint=f"the broker is short of memory or disk ('tcel logs broker' says which); once it is not, see "
        f"'tcel result {task_id}' before sending it again",
    )


def not_sent(broker_url: str, name: str, exc: Exception | None) -> ServiceUnreachable:
    return ServiceUnreachable(
        f"{name} was not sent: the broker at {mask_url(broker_url)} did not take it ({exc or type(exc).__name__})",
        hint="start the stack with 'tcel up', or check --broker-url",
    )
