"""Publishing in a window of publisher confirms: the bookkeeping of acks and nacks (with `multiple`) and what a
send that ends early reports. The broker is a stand-in here because a real one cannot nack, or close the
channel, at a chosen point of a window on demand (tests/integration/test_call.py sends through the real one)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

import amqp
import pytest

from celery_cli import publish_confirms
from celery_cli.endpoints import Endpoints
from celery_cli.errors import ExitCode, ServiceUnreachable, TcelError
from celery_cli.publish_confirms import Confirms
from celery_cli.publish_errors import NotAllSent
from celery_cli.publisher import AmqpSender as Sender
from celery_cli.task_call import TaskCall

Event = tuple[str, int, bool] | Exception | None  # ("ack" | "nack", delivery tag, multiple), a failure, or nothing


class FakeBroker:
    """py-amqp's connection and channel as tcel uses them: publishes are recorded, and every read of the socket
    (drain_events) delivers what `respond` says the broker sends next, given how many were published."""

    def __init__(self, respond: Callable[[FakeBroker], Event]) -> None:
        self.respond = respond
        self.events: dict[str, set] = defaultdict(set)
        self.published: list[str] = []
        self.in_flight_at_publish: list[int] = []
        self.settled = 0

    # the channel
    def confirm_select(self) -> None:
        pass

    def queue_declare(self, *args: object, **kwargs: object) -> None:
        pass

    def basic_publish(self, message: amqp.Message, exchange: str, routing_key: str, mandatory: bool) -> None:
        self.published.append(message.properties["correlation_id"])
        self.in_flight_at_publish.append(len(self.published) - self.settled)

    # the connection
    connected = False  # nothing to set a close timeout on

    def channel(self) -> FakeBroker:
        return self

    def drain_events(self, timeout: float | None = None) -> None:
        event = self.respond(self)
        if event is None:
            raise TimeoutError()
        if isinstance(event, Exception):
            raise event
        kind, tag, multiple = event
        self.settled = tag if multiple else self.settled + 1
        for callback in list(self.events[f"basic_{kind}"]):
            callback(tag, multiple)

    def close(self) -> None:
        pass


def acks_everything(broker: FakeBroker) -> Event:
    """Acks all that was published so far in one `multiple` ack, as RabbitMQ does under load."""
    return ("ack", len(broker.published), True) if len(broker.published) > broker.settled else None


@pytest.fixture
def sender(monkeypatch: pytest.MonkeyPatch) -> Callable[..., tuple[Sender, FakeBroker]]:
    monkeypatch.setattr(publish_confirms, "CORK", None)
    monkeypatch.setattr(publish_confirms, "CONFIRM_TIMEOUT", 0.05)

    def make(respond: Callable[[FakeBroker], Event], window: int = 4) -> tuple[Sender, FakeBroker]:
        made = Sender(Endpoints("amqp://tcel:secret@127.0.0.1:5672//", None), window=window)
        broker = FakeBroker(respond)

        def open_fake() -> FakeBroker:
            made._connection = broker
            return made._new_channel()

        monkeypatch.setattr(made, "_open", open_fake)
        return made, broker

    return make


def tasks(count: int) -> list[tuple[TaskCall, str]]:
    return [(TaskCall("tasks.tsum", [[n, 1]]), f"id-{n}") for n in range(count)]


def test_acks_and_nacks_with_multiple_settle_every_tag_up_to_theirs() -> None:
    confirms = Confirms()
    for n in range(1, 7):
        confirms.published(f"id-{n}", float(n), 10)
    assert confirms.settle(3, multiple=True, acked=True) == [("id-1", 1.0), ("id-2", 2.0), ("id-3", 3.0)]
    assert confirms.settle(5, multiple=False, acked=False) == []  # one nack: only tag 5
    assert confirms.refused == ["id-5"] and confirms.unconfirmed == ["id-4", "id-6"] and confirms.bytes == 20
    confirms.returned.add("id-6")  # unroutable: returned, then acked
    assert confirms.settle(6, multiple=True, acked=True) == [("id-4", 4.0)]
    assert confirms.refused == ["id-5", "id-6"] and not confirms.pending and confirms.bytes == 0
    assert confirms.settle(6, multiple=False, acked=True) == []  # settled twice: nothing more


def test_a_window_keeps_at_most_its_size_in_flight_and_reports_each_task_once_confirmed(sender) -> None:
    made, broker = sender(acks_everything, window=4)
    confirmed: list[str] = []
    assert made.send_many(tasks(10), lambda task_id, at: confirmed.append(task_id)) == 10
    assert confirmed == [f"id-{n}" for n in range(10)] == broker.published
    assert max(broker.in_flight_at_publish) == 4


def test_a_generator_is_read_no_further_ahead_than_the_window(sender) -> None:
    made, broker = sender(acks_everything, window=3)
    pulled = 0

    def stream():
        nonlocal pulled
        for item in tasks(20):
            pulled += 1
            assert pulled - broker.settled <= 4  # the window, plus the one being made room for
            yield item

    assert made.send_many(stream(), lambda task_id, at: None) == 20


def test_a_nack_reports_exactly_which_tasks_were_not_queued_and_stops(sender) -> None:
    def nacks_the_third(broker: FakeBroker) -> Event:
        if broker.settled < 2 <= len(broker.published):
            return ("ack", 2, True)
        if broker.settled == 2 and len(broker.published) >= 3:
            return ("nack", 3, False)
        return acks_everything(broker)

    made, broker = sender(nacks_the_third, window=3)
    confirmed: list[str] = []
    with pytest.raises(NotAllSent) as raised:
        made.send_many(tasks(8), lambda task_id, at: confirmed.append(task_id))
    error = raised.value
    assert error.refused == ["id-2"] and error.unconfirmed == []
    assert confirmed == [task_id for task_id in broker.published if task_id != "id-2"]
    assert error.confirmed == len(confirmed) and error.unsent == 8 - len(broker.published) > 0
    assert error.exit_code == ExitCode.FAILURE
    assert f"{len(confirmed)} confirmed, 1 refused (not queued), {error.unsent} not sent" in str(error)


def test_a_channel_closed_mid_window_says_in_one_line_how_many_were_confirmed(sender) -> None:
    closed = amqp.exceptions.ConnectionForced("CONNECTION_FORCED - broker forced connection closure")

    def closes_after_two(broker: FakeBroker) -> Event:
        return ("ack", 2, True) if broker.settled < 2 else closed

    made, _broker = sender(closes_after_two, window=10)
    with pytest.raises(NotAllSent) as raised:
        made.send_many(tasks(6), lambda task_id, at: None)
    error = raised.value
    assert error.exit_code == ExitCode.SERVICE_UNREACHABLE and "\n" not in str(error)
    assert "2 confirmed, 4 written but not confirmed (may or may not be queued)" in str(error)
    assert error.unconfirmed == ["id-2", "id-3", "id-4", "id-5"] and error.unsent == 0
    assert "secret" not in str(error)  # the broker URL is masked


def test_a_window_the_broker_blocks_names_the_block_and_counts_what_was_confirmed(sender) -> None:
    """The broker confirms two, then blocks publishers (connection.blocked) and confirms nothing more."""

    def blocks_after_two(broker: FakeBroker) -> Event:
        if broker.settled < 2:
            return ("ack", 2, True)
        made._on_blocked("low on memory")
        return None

    made, broker = sender(blocks_after_two, window=4)
    with pytest.raises(NotAllSent) as raised:
        made.send_many(tasks(10), lambda task_id, at: None, total=10)
    error = raised.value
    assert error.exit_code == ExitCode.SERVICE_UNREACHABLE and "\n" not in str(error)
    assert "the broker blocks publishers (low on memory)" in str(error)
    assert error.confirmed == 2 and error.unsent == 10 - len(broker.published)
    assert "short of memory or disk" in error.hint


def test_one_task_unconfirmed_may_or_may_not_be_queued_and_is_not_sent_again(sender) -> None:
    made, broker = sender(lambda broker: None)  # the broker never confirms (it blocks publishers)
    with pytest.raises(ServiceUnreachable) as raised:
        made.send(TaskCall("tasks.add", [1, 2]), "id-1")
    assert "tasks.add id-1 went to the broker" in str(raised.value) and "may or may not be queued" in str(raised.value)
    assert "no confirm within 0.05 s" in str(raised.value) and broker.published == ["id-1"]


def test_one_task_nacked_is_refused_not_queued(sender) -> None:
    made, _broker = sender(lambda broker: ("nack", 1, False) if broker.settled < len(broker.published) else None)
    with pytest.raises(TcelError) as raised:
        made.send(TaskCall("tasks.add", [1, 2]), "id-1")
    assert "refused tasks.add id-1" in str(raised.value) and raised.value.exit_code == ExitCode.FAILURE


def test_the_body_and_properties_are_what_celerys_own_message_carries() -> None:
    """The window changes how messages go out, not what they are: body and properties as Celery's as_task_v2."""
    import json

    from celery import Celery

    from celery_cli.task_message import message as task_message

    message, _, size = task_message(TaskCall("tasks.tsum", [[1, 2, 3]], {"start": 1}), "id-1", "gen1@host")
    theirs = Celery(set_as_current=False).amqp.as_task_v2("id-1", "tasks.tsum", [[1, 2, 3]], {"start": 1})
    assert json.loads(message.body) == json.loads(json.dumps(theirs.body))
    assert size == len(message.body)
    for key in ("correlation_id", "reply_to"):
        assert message.properties[key] == theirs.properties[key], key
    assert message.properties["delivery_mode"] == 2 and message.properties["content_type"] == "application/json"
