"""A streamed, distributed sum (`tcel tsum -`): numbers read from a stream in checked chunks, each chunk sent as
a task while the stream is read, a bounded number of them in flight, and the final sum computed by a worker
(`tasks.tsum`) over the partial sums once they are all in.

The client never holds more than a chunk of the input: it reads CHUNK_BYTES of text, checks every word in it
(integers exact, decimals finite; a bad word is a usage error naming its line and its place among the
numbers), and sends the text itself as `tasks.tsum_chunk`, which parses and sums it on a worker. With
IN_FLIGHT chunks sent and not yet summed, it waits for one of their results before reading on, so its memory
stays flat whatever the input's size and the broker never holds more than IN_FLIGHT chunks of it.

Why not a Celery chord: a chord's header is a group whose size every part must know when it is sent (the
Redis backend counts finished parts against it), and a stream's size is known only at its end; tcel also
builds its messages itself rather than through Celery's canvas. Collecting the partial sums in the client,
which waits for them anyway to bound what is in flight, and sending one last `tsum` over them needs nothing
but two plain tasks, and a client that dies mid-stream leaves no chord counter behind, only finished chunks.
"""

from __future__ import annotations

import queue
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

from .endpoints import Endpoints
from .errors import ExitCode, TaskFailed, TcelError, UsageError, WaitTimeout
from .publisher import Sender
from .result_follower import following
from .result_store import ResultStore
from .task_args import INT_DIGITS_MAX, Number, parse_number
from .task_call import TaskCall
from .task_message import new_task_id

if TYPE_CHECKING:
    from .result_follower import Follower

CHUNK_BYTES = 1 << 20  # of input text per chunk task: about 130,000 numbers of `seq`, a message of ~1.1 MiB
IN_FLIGHT = 8  # chunk tasks sent whose sums have not come back; the reader waits for one before reading on
MAX_WORD = INT_DIGITS_MAX + 100  # a longer word is no number a task can take (a decimal's digits included)
CHUNK_TASK = "tasks.tsum_chunk"
SUM_TASK = "tasks.tsum"

_WORD = re.compile(rb"\S+")
_SPACES = bytes.maketrans(b"\t\n\r\x0b\x0c", b"     ")  # every ASCII whitespace (what bytes.split splits on)
_DIGITS_AND_SPACE = b"0123456789 "
_SIGNS = (b"-", b"+")


class Stopped(TcelError):
    """Ctrl-C while a streamed sum was being sent."""

    exit_code = ExitCode.INTERRUPTED


@dataclass(frozen=True)
class Chunk:
    """A piece of the input, every word in it checked: the text a chunk task parses and sums."""

    text: str
    numbers: int  # how many numbers it holds
    first: int  # how many numbers of the input came before it
    line: int  # the input's line its text starts on (1-based)


def read_chunks(stream: IO[bytes], chunk_bytes: int = CHUNK_BYTES) -> Iterator[Chunk]:
    """The input cut into chunks of about `chunk_bytes` at whitespace, each checked before it is yielded (so
    nothing of a chunk is sent before all of it is known good); a bad word raises UsageError with its place."""
    carry = b""
    numbers, lines = 0, 0
    block = stream.read(chunk_bytes)
    while block:
        following = stream.read(chunk_bytes)  # read one block ahead, so that the last chunk takes all the rest
        data = carry + block if carry else block
        carry = b""
        if following and not data[-1:].isspace():  # the last word may go on in the next block
            carry = data.rsplit(None, 1)[-1]
            data = data[: len(data) - len(carry)]
            if len(carry) > MAX_WORD:
                line = lines + data.count(b"\n") + 1
                raise UsageError(
                    f"a word of more than {MAX_WORD} characters on line {line:,} of the input",
                    hint=f"an integer has at most {INT_DIGITS_MAX} digits (Python's limit, which the workers apply)",
                )
        chunk = _checked(data, numbers, lines)
        lines += data.count(b"\n")
        if chunk.numbers:
            numbers += chunk.numbers
            yield chunk
        block = following


def _checked(data: bytes, first: int, lines: int) -> Chunk:
    """The chunk of `data` once every word in it is a number; else a UsageError naming the first bad word."""
    text = data.translate(_SPACES)
    count = _integers(text)
    if count is not None:  # the common case, checked with a few passes of bytes methods (no per-word Python)
        return Chunk(text.decode("ascii"), count, first, lines + 1)
    count = 0
    for count, match in enumerate(_WORD.finditer(data), 1):  # decimals, or a bad word to find
        word = match.group().decode("utf-8", errors="replace")
        try:
            if not match.group().isascii():  # the workers' int() would take other scripts' digits: refuse them here
                raise UsageError(f"not a number: {word!r}", hint="give integers or decimals such as 2, -3 or 1.5")
            parse_number(word)
        except UsageError as error:
            line = lines + data.count(b"\n", 0, match.start()) + 1
            raise UsageError(
                f"{error.message} (line {line:,} of the input, number {first + count:,})", hint=error.hint
            ) from None
    return Chunk(text.decode("ascii"), count, first, lines + 1)


def _integers(text: bytes) -> int | None:
    """How many words `text` (whitespace made spaces) holds when each is an integer of at most INT_DIGITS_MAX
    digits with an optional sign; None otherwise (decimals, or a bad word, for the word-by-word check)."""
    rest = text.translate(None, _DIGITS_AND_SPACE)
    if rest.translate(None, b"+-"):
        return None  # anything but digits, spaces and signs
    if rest:  # every sign starts a word and is followed by a digit
        spaced = b" " + text + b" "
        if spaced.count(b" -") + spaced.count(b" +") != len(rest) or any(
            sign + after in spaced for sign in _SIGNS for after in (b" ", b"-", b"+")
        ):
            return None
    while b"  " in text:
        text = text.replace(b"  ", b" ")
    text = text.strip(b" ")
    if not text:
        return 0
    # a word of more than INT_DIGITS_MAX characters covers a multiple of INT_DIGITS_MAX: look only there
    for middle in range(INT_DIGITS_MAX, len(text), INT_DIGITS_MAX):
        if text[middle] != ord(" "):
            end = text.find(b" ", middle)
            word = text[text.rfind(b" ", 0, middle) + 1 : end if end >= 0 else len(text)]
            if len(word.lstrip(b"+-")) > INT_DIGITS_MAX:
                return None
    return text.count(b" ") + 1


def numbers_of(chunk: Chunk) -> list[Number]:
    """A checked chunk's numbers, for sending a small input as one `tsum` task."""
    return [parse_number(word) for word in chunk.text.split()]


@dataclass
class Tally:
    """How far a streamed sum has got, for its progress display."""

    numbers_read: int = 0
    chunks_sent: int = 0
    chunks_done: int = 0
    started: float = 0.0

    @property
    def rate(self) -> float:
        """Numbers read per second so far."""
        elapsed = time.monotonic() - self.started
        return self.numbers_read / elapsed if elapsed > 0 else 0.0


def sum_stream(
    endpoints: Endpoints,
    chunks: Iterator[Chunk],
    timeout: float,
    on_progress: Callable[[Tally], None],
) -> TaskCall:
    """Send every chunk as a task, at most IN_FLIGHT at a time, and collect their sums; return the call of the
    final `tsum` over them (in the order of the input), carrying what the job was for the index.

    `timeout` bounds each wait for a chunk's sum. On any failure (a bad word, a chunk that failed, no sum
    within `timeout`, Ctrl-C) the chunks still in flight are revoked and the error says what was sent.
    """
    assert endpoints.backend_url is not None
    store = ResultStore(endpoints.backend_url)
    tally = Tally(started=time.monotonic())
    sums: dict[str, Number] = {}
    sent: list[str] = []
    in_flight: dict[str, Chunk] = {}
    with following(store) as follower, Sender(endpoints) as sender:
        try:
            for chunk in _read_ahead(chunks):
                while len(in_flight) >= IN_FLIGHT:
                    _collect(follower, in_flight, sums, timeout, tally)
                    on_progress(tally)
                task_id = new_task_id()
                follower.follow(task_id)
                # not indexed here: the worker indexes it on receipt, and the final task keeps every chunk's id
                sender.send(TaskCall(CHUNK_TASK, [chunk.text]), task_id)
                sent.append(task_id)
                in_flight[task_id] = chunk
                tally.chunks_sent += 1
                tally.numbers_read += chunk.numbers
                on_progress(tally)
            while in_flight:
                _collect(follower, in_flight, sums, timeout, tally)
                on_progress(tally)
        except KeyboardInterrupt:
            raise Stopped(f"stopped; {_abandon(endpoints, sent, in_flight)}") from None
        except TcelError as error:
            raise type(error)(f"{error.message}; {_abandon(endpoints, sent, in_flight)}", hint=error.hint) from None
    job = {
        "numbers": tally.numbers_read,
        "chunks": len(sent),
        "chunk_task": CHUNK_TASK,
        "chunk_ids": sent,
        "read_seconds": round(time.monotonic() - tally.started, 3),
    }
    return TaskCall(SUM_TASK, [[sums[task_id] for task_id in sent]], job=job)


def _read_ahead(chunks: Iterator[Chunk]) -> Iterator[Chunk]:
    """The same chunks, the next one read and checked in a thread while this one is sent (the send waits on
    the broker's confirm, which releases the GIL); a reader's error comes out where its chunk would have."""
    ahead: queue.Queue[tuple[Chunk | None, BaseException | None]] = queue.Queue(maxsize=1)

    def read() -> None:
        try:
            for chunk in chunks:
                ahead.put((chunk, None))
            ahead.put((None, None))
        except BaseException as error:
            ahead.put((None, error))

    threading.Thread(target=read, name="tsum-reader", daemon=True).start()
    while True:
        chunk, error = ahead.get()
        if error is not None:
            raise error
        if chunk is None:
            return
        yield chunk


def _collect(
    follower: Follower, in_flight: dict[str, Chunk], sums: dict[str, Number], timeout: float, tally: Tally
) -> None:
    """Wait until at least one chunk in flight has its sum."""
    deadline = time.monotonic() + timeout
    ready = follower.next(deadline, lambda task_id, state: None)
    if not ready:
        raise WaitTimeout(
            f"no chunk of the sum came back within {timeout:g}s ({len(in_flight)} in flight)",
            hint="see 'tcel status' for the workers, or give a longer --timeout",
        )
    for task_id, meta in ready.items():
        chunk = in_flight.pop(task_id)
        if meta.get("status") != "SUCCESS":
            result = meta.get("result") or {}
            message = result.get("exc_message") if isinstance(result, dict) else result
            message = ", ".join(map(str, message)) if isinstance(message, (list, tuple)) else message
            why = f"{result.get('exc_type', 'Error')}: {message}" if isinstance(result, dict) else message
            raise TaskFailed(
                f"chunk task {task_id} ({CHUNK_TASK}, numbers {chunk.first + 1:,} to {chunk.first + chunk.numbers:,}) "
                f"ended {meta.get('status')}: {why}",
                hint=f"see 'tcel result {task_id}'",
            )
        sums[task_id] = meta["result"]
        tally.chunks_done += 1


def _abandon(endpoints: Endpoints, sent: list[str], in_flight: dict[str, Chunk]) -> str:
    """Revoke the chunks still in flight; say what became of everything sent."""
    if not sent:
        return "nothing was sent"
    done = len(sent) - len(in_flight)
    said = f"nothing was summed: of the {len(sent)} chunk task(s) sent, {done} had finished"
    if not in_flight:
        return said
    from .errors import ServiceUnreachable
    from .remote_control import Control

    try:
        with Control(endpoints.broker_url) as control:
            nodes = control.revoke(list(in_flight))
    except ServiceUnreachable as error:
        return f"{said}, and {len(in_flight)} in flight could not be revoked ({error.message})"
    if not nodes:
        return f"{said}, and no worker acknowledged revoking the {len(in_flight)} in flight"
    return (
        f"{said} and the {len(in_flight)} in flight were revoked (acknowledged by {', '.join(sorted(nodes))}): "
        f"{', '.join(in_flight)}"
    )
