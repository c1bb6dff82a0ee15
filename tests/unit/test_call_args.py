"""`tcel call`'s argument forms, delivery options and message headers, without a stack."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from celery_cli.cli import app
from celery_cli.errors import ExitCode, UsageError
from celery_cli.task_args import (
    JSON_DEPTH_MAX,
    parse_expires,
    parse_json_arg,
    parse_json_args,
    parse_kwargs,
    parse_queues,
    parse_seconds,
    parse_time,
    read_bounded,
)
from celery_cli.task_call import TaskCall


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("3", 3),
        ("-2.5", -2.5),
        ('"text"', "text"),
        ("[1, 2]", [1, 2]),
        ('{"k": 1}', {"k": 1}),
        ("true", True),
        ("null", None),
        (str(2**80), 2**80),
        ('"-x"', "-x"),
    ],
)
def test_each_arg_is_a_json_literal(text: str, value) -> None:
    assert parse_json_arg(text) == value


@pytest.mark.parametrize("text", ["word", "NaN", "Infinity", "-Infinity", "1e999", "[1,", "'single'", ""])
def test_anything_not_json_is_a_usage_error_showing_the_argument(text: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_json_arg(text)
    assert caught.value.exit_code == ExitCode.USAGE
    assert repr(text) in str(caught.value) and "--raw-strings" in str(caught.value)


def test_raw_strings_take_words_as_strings_but_keep_json_as_json() -> None:
    assert parse_json_arg("word", raw_strings=True) == "word"
    assert parse_json_arg("3", raw_strings=True) == 3
    with pytest.raises(UsageError, match="no such option: --wiat"):
        parse_json_arg("--wiat", raw_strings=True)


def test_kwargs_must_be_a_json_object() -> None:
    assert parse_kwargs('{"a": [1], "b": null}') == {"a": [1], "b": None}
    assert parse_kwargs(None) == {}
    for bad in ("[1]", "3", "{a: 1}", '{"x": NaN}'):
        with pytest.raises(UsageError, match="--kwargs"):
            parse_kwargs(bad)


def test_seconds_times_and_expiry() -> None:
    assert parse_seconds("2.5", "--countdown") == 2.5
    for bad in ("-1", "nan", "inf", "1e999", "soon"):
        with pytest.raises(UsageError, match="--countdown"):
            parse_seconds(bad, "--countdown")
    assert parse_time("2030-01-31T14:30:00+02:00", "--eta") == datetime(2030, 1, 31, 12, 30, tzinfo=UTC)
    assert parse_time("2030-01-31T14:30", "--eta").tzinfo is UTC  # naive means local, made explicit
    with pytest.raises(UsageError, match="ISO-8601"):
        parse_time("tomorrow", "--eta")
    assert parse_expires("30") == 30.0
    assert parse_expires("2030-01-31T14:30:00Z") == datetime(2030, 1, 31, 14, 30, tzinfo=UTC)
    with pytest.raises(UsageError):
        parse_expires("-5")


def test_countdown_and_eta_together_are_refused() -> None:
    with pytest.raises(UsageError, match="--countdown and --eta"):
        TaskCall("tasks.add", countdown=1, eta=datetime.now(UTC))


def test_queue_lists_keep_order_once_each_and_refuse_bad_names() -> None:
    assert parse_queues("celery, emails,celery") == ("celery", "emails")
    for bad in ("", ",", "amq.direct", "has space", "a" * 201):
        with pytest.raises(UsageError):
            parse_queues(bad)


def test_headers_say_what_celerys_own_as_task_v2_says() -> None:
    """ETA, expiry and the argument reprs as Celery's own message would carry them for the same call."""
    from celery import Celery

    from celery_cli.task_message import headers

    sent = datetime(2030, 1, 1, tzinfo=UTC)
    task = TaskCall("tasks.greet", ["bob"], {"punctuation": "?"}, countdown=10, expires=60)
    ours = headers(task, "id-1", sent.timestamp(), "gen1@host")
    celery = Celery(set_as_current=False)
    theirs = celery.amqp.as_task_v2(
        "id-1", "tasks.greet", ["bob"], {"punctuation": "?"}, countdown=10, expires=60, now=sent, timezone=UTC
    ).headers
    for key in ("task", "id", "eta", "expires", "retries", "root_id", "argsrepr", "kwargsrepr", "timelimit"):
        assert ours[key] == theirs[key], key


@pytest.mark.parametrize(("queue", "priority"), [("celery", 3), ("celery", None), ("emails", 7), ("emails", None)])
def test_the_message_is_what_celerys_own_send_task_publishes(monkeypatch, queue: str, priority: int | None) -> None:
    """Body, headers, properties, exchange and routing key of the same call through the installed Celery's
    send_task (its producer's publish captured) and through tcel's Sender (its channel's publish captured), to
    the default queue and to another one (which Celery creates as tcel does: `task_create_missing_queues`), with
    a priority and without."""
    import json

    import amqp
    from celery import Celery
    from kombu import Producer

    from celery_cli import publish_confirms
    from celery_cli.endpoints import Endpoints
    from celery_cli.publisher import AmqpSender as Sender
    from tests.unit.test_publisher_window import FakeBroker, acks_everything

    eta, expires = datetime(2030, 1, 1, tzinfo=UTC), datetime(2030, 1, 2, tzinfo=UTC)
    theirs: dict = {}
    monkeypatch.setattr(Producer, "publish", lambda self, body, **options: theirs.update(body=body, **options))
    celery = Celery(set_as_current=False, broker="memory://")
    celery.conf.task_serializer = "json"
    celery.send_task(
        "tasks.greet",
        ["bob"],
        {"punctuation": "?"},
        task_id="id-1",
        eta=eta,
        expires=expires,
        queue=queue,
        priority=priority,
    )

    ours: dict = {}

    declared: list[tuple] = []

    class Recording(FakeBroker):
        """A broker where the queue does not exist yet: tcel declares it, and what it declares is recorded."""

        def queue_declare(self, queue, passive=False, durable=False, exclusive=False, auto_delete=True) -> None:
            if passive:
                raise amqp.exceptions.NotFound(f"no queue '{queue}'")
            declared.append(("queue", queue, durable, exclusive, auto_delete))

        def exchange_declare(self, exchange, type, durable=True, auto_delete=True) -> None:
            declared.append(("exchange", exchange, type, durable, auto_delete))

        def queue_bind(self, queue, exchange, routing_key) -> None:
            declared.append(("bind", queue, exchange, routing_key))

        def basic_publish(self, message, exchange, routing_key, mandatory) -> None:
            ours.update(message=message, exchange=exchange, routing_key=routing_key, mandatory=mandatory)
            super().basic_publish(message, exchange, routing_key, mandatory)

    monkeypatch.setattr(publish_confirms, "CORK", None)
    sender, broker = Sender(Endpoints("amqp://x", "redis://x")), Recording(acks_everything)

    def open_recording():
        sender._connection = broker
        return sender._new_channel()

    monkeypatch.setattr(sender, "_open", open_recording)
    sender.send(
        TaskCall(
            "tasks.greet", ["bob"], {"punctuation": "?"}, queue=queue, eta=eta, expires=expires, priority=priority
        ),
        "id-1",
    )
    message = ours["message"]
    assert (ours["exchange"], ours["routing_key"]) == (theirs["exchange"], theirs["routing_key"]) == ("", queue)
    celerys = theirs["declare"][0]  # what Celery declares before its first publish to the queue
    assert (
        declared
        == [
            (
                "exchange",
                celerys.exchange.name,
                celerys.exchange.type,
                celerys.exchange.durable,
                celerys.exchange.auto_delete,
            ),
            ("queue", celerys.name, celerys.durable, celerys.exclusive, celerys.auto_delete),
            ("bind", celerys.name, celerys.exchange.name, celerys.routing_key),
        ]
        == [
            ("exchange", queue, "direct", True, False),
            ("queue", queue, True, False, False),
            ("bind", queue, queue, queue),
        ]
    )
    assert json.loads(message.body) == json.loads(json.dumps(theirs["body"]))
    assert message.properties["content_type"] == "application/json" and theirs["serializer"] == "json"
    for key in ("delivery_mode", "correlation_id", "priority"):
        assert message.properties.get(key) == theirs[key], key
    headers = message.properties["application_headers"]
    assert headers.pop("origin").startswith("gen") and theirs["headers"].pop("origin").startswith("gen")
    assert headers == theirs["headers"]
    # Left different on purpose: Celery's reply_to names its client for the rpc:// backend (tcel's backend is
    # Redis); its AMQP `expiration` makes the broker drop an expired task silently, where tcel's message lets
    # the worker store it as REVOKED, which `tcel result` shows; tcel publishes `mandatory`, so that a message
    # no queue takes comes back as an error instead of vanishing.
    assert message.properties["reply_to"] == "" and theirs["reply_to"]
    assert "expiration" not in message.properties and theirs["expiration"] > 0
    assert ours["mandatory"] and not theirs.get("mandatory")


@pytest.mark.parametrize(
    "value",
    [
        [],
        [1],
        (1,),
        ("a", 2),
        {},
        {"k": [1, "x"]},
        [[1, 2], [3]],
        ["it's", 'say "hi"'],
        [None, True, 1.5, 2**80],
        list(range(400)),
        {"k": "x" * 5000},
        [{"a": list(range(1000))}],
        ["x" * 2000],
    ],
)
def test_argsrepr_is_celerys_repr_bounded_without_building_the_whole_string(value) -> None:
    from celery.utils.saferepr import saferepr

    from celery_cli.task_message import ARGSREPR_MAX, bounded_repr

    full = repr(value)
    shown = bounded_repr(value)
    if len(full) <= ARGSREPR_MAX:
        assert shown == full
        if "'s" not in full:  # saferepr escapes a quote inside a string where repr switches quotes
            assert shown == saferepr(value, ARGSREPR_MAX)
    else:
        assert shown == full[: ARGSREPR_MAX - 3] + "..."


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=8) | st.dictionaries(st.text(max_size=8), inner, max_size=8),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES)
def test_the_fast_argsrepr_of_small_arguments_is_the_bounded_one(value) -> None:
    """The publisher takes `repr` whole when the message body fits the limit; it must show what the item by
    item repr shows, cut the same way."""
    import json

    from celery_cli.task_message import ARGSREPR_MAX, bounded_repr

    if len(json.dumps(value)) <= ARGSREPR_MAX:
        assert bounded_repr(value, small=True) == bounded_repr(value)


def test_argsrepr_of_millions_of_numbers_takes_no_time_to_build() -> None:
    from celery_cli.task_message import bounded_repr

    numbers = list(range(5_000_000))
    assert bounded_repr(numbers) == repr(numbers[:300])[:1021] + "..."


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["tasks.add", "two"], "argument 'two' is not JSON"),
        (["tasks.add", "--kwargs", "[1]"], "--kwargs must be a JSON object"),
        (["tasks.add", "--countdown", "1", "--eta", "2030-01-01"], "--countdown and --eta"),
        (["tasks.add", "--priority", "10"], "--priority"),
        (["tasks.add", "--queue", "amq.x"], "invalid queue name"),
        (["tasks.add", "--expires", "later"], "--expires 'later'"),
        (["", "1"], "invalid task name"),
        (["tasks.add", "--wiat"], "no such option: --wiat"),
    ],
)
def test_call_refuses_bad_arguments_before_anything_is_sent(args: list[str], said: str, tmp_path) -> None:
    result = CliRunner().invoke(app, ["call", *args, "--project-dir", str(tmp_path)])
    assert result.exit_code == ExitCode.USAGE
    assert said in result.output and "Traceback" not in result.output


def test_negative_numbers_are_arguments_not_options(tmp_path, monkeypatch) -> None:
    """-3 reaches the argument parser (and then the missing stack), not Click's option parser."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    result = CliRunner().invoke(app, ["call", "tasks.add", "-3", "-4.5", "--project-dir", str(tmp_path)])
    assert result.exit_code == ExitCode.NOT_RUNNING, result.output


@pytest.mark.parametrize("depth", [JSON_DEPTH_MAX + 1, 2_000, 200_000])
def test_json_nested_too_deep_is_a_usage_error_not_a_recursion_error(depth: int, tmp_path) -> None:
    assert parse_json_arg("[" * JSON_DEPTH_MAX + "]" * JSON_DEPTH_MAX) == eval(
        "[" * JSON_DEPTH_MAX + "]" * JSON_DEPTH_MAX
    )
    deep = '{"k": ' * depth + "1" + "}" * depth
    with pytest.raises(UsageError, match=f"nested deeper than {JSON_DEPTH_MAX}"):
        parse_json_arg(deep)
    with pytest.raises(UsageError, match=f"nested deeper than {JSON_DEPTH_MAX}"):
        parse_kwargs(deep)
    result = CliRunner().invoke(app, ["call", "tasks.add", "-", "--project-dir", str(tmp_path)], input=deep)
    assert result.exit_code == ExitCode.USAGE, result.output
    assert "nested deeper" in result.output and "Traceback" not in result.output


class Endless(io.StringIO):
    """A stdin that never ends (`yes | tcel call t -`)."""

    def read(self, size: int | None = -1) -> str:
        assert size is not None and size >= 0, "read without a bound"
        return "1" * size


def test_stdin_is_read_up_to_the_message_limit_and_no_further(tmp_path) -> None:
    assert read_bounded(io.StringIO("é" * 4), limit=8) == "é" * 4
    with pytest.raises(UsageError, match="more than"):
        read_bounded(io.StringIO("é" * 5), limit=8)  # 5 characters, 10 bytes
    with pytest.raises(UsageError, match=r"not sent: .*the broker's limit of 16 MiB"):
        parse_json_args(["-"], stdin=Endless())
    result = CliRunner().invoke(
        app, ["call", "tasks.add", "-", "--project-dir", str(tmp_path)], input="[" + "1," * (8 * 2**20) + "1]"
    )
    assert result.exit_code == ExitCode.USAGE, result.output
    assert "the broker's limit of 16 MiB" in result.output and "not sent" in result.output


def test_a_workflow_on_stdin_is_bounded_and_its_depth_too(tmp_path) -> None:
    workflow = ["workflow", "-", "--project-dir", str(tmp_path)]
    result = CliRunner().invoke(app, workflow, input='{"group": ["tasks.add(1, 1)"' + ", 1" * (9 * 2**20) + "]}")
    assert result.exit_code == ExitCode.USAGE and "the broker's limit of 16 MiB" in result.output, result.output
    deep = '{"chain": [' * 2_000 + "]}" * 2_000
    result = CliRunner().invoke(app, workflow, input=deep)
    assert result.exit_code == ExitCode.USAGE and "nested deeper" in result.output, result.output
