"""Task ids as people type them: a whole id, or a unique prefix of one tcel's index knows (as docker and git
take them), cut where a narrow table cut it (`73949a9d-b2da-…`)."""

from __future__ import annotations

from .credentials import mask_url
from .errors import NotFound, UsageError
from .names import FLOW_KEY, INDEX_KEY
from .names import RESULT_KEY as META_KEY
from .result_store import ResultStore

FULL_LENGTH = 36  # a UUID, as Celery makes task ids
SHOWN_MATCHES = 10


def cleaned(text: str) -> str:
    """The id as typed, without blanks and without the mark a cut table cell ends with; empty is refused."""
    task_id = text.strip().rstrip("…").rstrip(".").strip()
    if not task_id:
        raise UsageError("an empty task id was given", hint="give a task id, or a unique start of one: tcel results")
    return task_id


def resolve(store: ResultStore, text: str) -> str:
    """The whole id of the task `text` names: itself when the backend or the index knows it whole, else the one
    id in tcel's index that starts with it. None known is exit 10; several is a usage error (2) listing them."""
    task_id = cleaned(text)
    if len(task_id) >= FULL_LENGTH:
        return task_id
    with store.errors():
        pipe = store.client.pipeline(transaction=False)
        pipe.exists(META_KEY + task_id)
        pipe.zscore(INDEX_KEY, task_id)
        pipe.exists(FLOW_KEY + task_id)  # a workflow's id: a group's, as `tcel group` prints it
        whole, indexed, workflow = pipe.execute()
        if whole or indexed is not None or workflow:
            return task_id
        ids = [str(i) for i in store.client.zrange(INDEX_KEY, 0, -1)]  # at most the index's 10,000 newest
    matches = sorted(i for i in ids if i.startswith(task_id))
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise NotFound(
            f"no task {task_id} in the backend at {mask_url(store.backend_url)}, nor an id starting with it",
            hint="it was never sent to this stack, or its result has expired; 'tcel results' lists the recent ones",
        )
    more = len(matches) - SHOWN_MATCHES
    shown = ", ".join(matches[:SHOWN_MATCHES]) + (f" and {more} more" if more > 0 else "")
    raise UsageError(
        f"task id {task_id!r} is ambiguous: {len(matches)} tasks start with it ({shown})", hint="give more of it"
    )


def resolve_at(backend_url: str | None, text: str) -> str:
    """`resolve` through the backend at `backend_url`; with none known, only a whole id is taken."""
    if backend_url is None:
        task_id = cleaned(text)
        if len(task_id) < FULL_LENGTH:
            raise UsageError(
                f"task id {task_id!r} is not a whole id, and no result backend is known to look it up",
                hint="give the whole id, or pass --backend-url",
            )
        return task_id
    return resolve(ResultStore(backend_url), text)
