"""Nothing tcel or its worker does needs what RabbitMQ 4.3 (the rabbitmq:4 image) denies by default.

4.3 refuses transient (non-durable) non-exclusive queues with 541 INTERNAL_ERROR and turns a channel-wide
(global) prefetch into a per-consumer one. After the commands that declare queues or talk to workers, the
broker must hold no queue that is neither durable nor exclusive, no channel with a global prefetch, and must
not have logged the use of any deprecated feature (RabbitMQ logs "Deprecated features: `name`" the first
time a client uses one, whether it is permitted or denied).
"""

from __future__ import annotations

import json
import re
import uuid

# Since 4.0, `rabbitmqctl list_channels` no longer accepts the global_prefetch_count column, but the node
# still reports it for every channel (rabbit_channel:info_all/1, 3.x to 4.3), so ask the node.
CHANNELS_WITH_GLOBAL_PREFETCH = (
    "[{proplists:get_value(name, I), proplists:get_value(global_prefetch_count, I)}"
    " || I <- rabbit_channel:info_all([name, global_prefetch_count])]."
)


def rabbitmqctl(broker, *args: str) -> str:
    code, output = broker.exec_run(["rabbitmqctl", "-q", *args])
    text = output.decode(errors="replace")
    assert code == 0, f"rabbitmqctl {' '.join(args)} exited {code}: {text}"
    return text


def transient_nonexclusive_queues(broker) -> list[str]:
    """'vhost queue' for every queue that is neither durable nor exclusive, on every vhost."""
    found = []
    for vhost in json.loads(rabbitmqctl(broker, "list_vhosts", "name", "--formatter", "json")):
        queues = rabbitmqctl(
            broker, "list_queues", "-p", vhost["name"], "name", "durable", "exclusive", "--formatter", "json"
        )
        found += [f"{vhost['name']} {q['name']}" for q in json.loads(queues) if not q["durable"] and not q["exclusive"]]
    return found


def global_prefetch_by_channel(broker) -> dict[str, int]:
    text = rabbitmqctl(broker, "eval", CHANNELS_WITH_GLOBAL_PREFETCH)
    return {name: int(count) for name, count in re.findall(r'\{<<"([^"]*)">>,\s*(\d+)\}', text)}


def deprecated_features_used(broker) -> list[str]:
    logs = broker.logs().decode(errors="replace")
    return sorted(set(re.findall(r"Deprecated features: `(\w+)`", logs)))


def test_stack_uses_no_feature_rabbitmq_4_3_denies(project) -> None:
    steps = [
        ("up",),
        ("add", "2", "3", "--wait"),
        ("status",),
        ("revoke", str(uuid.uuid4())),
        ("scale", "2"),
        ("bench", "-n", "200"),
    ]
    for step in steps:
        result = project.tcel(*step)
        assert result.code == 0, f"tcel {' '.join(step)} exited {result.code}: {result.stderr}"
        if step[0] == "add":
            assert result.stdout.strip() == "5"

    broker = project.engine.containers.get(f"tcel-{project.name}-broker")
    version = rabbitmqctl(broker, "version").strip()
    channels = global_prefetch_by_channel(broker)
    assert len(channels) >= 2, f"RabbitMQ {version}: expected the two workers' channels, got {channels}"

    assert transient_nonexclusive_queues(broker) == [], f"RabbitMQ {version} holds transient non-exclusive queues"
    assert deprecated_features_used(broker) == [], f"RabbitMQ {version} logged deprecated features in use"
    if int(version.split(".")[0]) >= 4:
        # On 3.x Celery asks for a global prefetch on purpose (kombu: RabbitMQ 3.3 to 3.13), which is right there.
        with_global = {name: count for name, count in channels.items() if count}
        assert with_global == {}, f"RabbitMQ {version}: channels with a global prefetch"
