"""The worker is cut off from the stack's network (`docker network disconnect`) mid-task and reconnected:
its tasks' results all come back, nothing is lost, and the worker consumes again by itself.

What happens (Celery 5.7, RabbitMQ 4.0 stand-in): the worker's connections die with the cut; its tasks finish
but cannot be acknowledged (late acks). The worker comes back on another address (the test makes sure of it,
below), so no packet of its old connections, not even their close, reaches the broker or Redis again. The
broker holds the old connection, the tasks unacknowledged on it and the worker's exclusive control queue
`celery@worker-1.celery.pidbox` until something tells it the peer is gone; the reconnected worker declaring
that queue meanwhile is refused (RESOURCE_LOCKED). Three settings of celeryconfig.py make the worker recover
by itself, each seen missing in a run of this test:
- `broker_heartbeat = 10`: the broker drops the silent connection 20-30 s after its last traffic, and
  requeues the tasks, which run again (they ran twice: at-least-once). Without heartbeats it never does (the
  second test below); with Celery's default (60 s granted) it took minutes.
- `broker_channel_error_retry = True`: the refused worker tries again until the broker has let go. Without it
  Celery's consumer stopped for good at the RESOURCE_LOCKED: the worker alive, consuming nothing (120 s later).
- `redis_socket_timeout = 10`: the worker's old Redis connections answer nothing; with Celery's default 120 s
  read timeout they held the consumer (its task-received hook writes to Redis) and the pool processes (storing
  results): no result was stored within 60 s.

Had the worker come back on its old address, the broker's next write on the old connection would be answered
with a TCP reset and the connection closed within seconds whatever the heartbeat, which is why earlier runs
without the short heartbeat recovered in time in 2 of 5 (Docker gives a reconnected container the lowest free
address, usually its old one). So the test reconnects it elsewhere: a stand-in container takes the old
address, the worker (paused meanwhile, so that none of its traffic reaches the broker before) connects on the
next one, and the stand-in goes, leaving the old address vacant, as when a host moves.

The bite: the same cut with the heartbeat switched off (`broker_heartbeat = 0`: no heartbeats either way),
which is deterministic where Celery's default heartbeat would be flaky (its timeout lands inside or outside
the bound from run to run): nothing then tells the broker that the old connection is dead (RabbitMQ sets no TCP
keepalive, and a write to the vacant address only fails after TCP's retries, about 15 minutes), so at the end
of the same bound the queue still holds every task that was in flight, unacknowledged on the stale
connection. The test then recovers as an operator would and checks that nothing was lost. (The other two
settings have no off variant: whether the worker reconnects before or after the broker lets go is a race,
and the Redis timeout's effect is a delay, shown by the logs this test prints when it fails.)
"""

import time
from dataclasses import dataclass

from tests.faults.conftest import (
    container,
    queued,
    runs,
    send_counted,
    switched_off,
    tally,
    wait_running,
    wait_stored,
)

SENT = 6
SECONDS = 6
CUT = 8  # longer than what is left of the running tasks: they end while the worker is cut off
# Seconds from the reconnection for the worker to have consumed and run its requeued tasks by itself: the broker
# lets the old connection go 20-30 s after its last traffic (10 s heartbeats), the worker's old backend
# connection holds it up to 10 s more (redis_socket_timeout), then the tasks run again (6 s).
RECOVERY = 60


@dataclass
class Cut:
    in_flight: int
    stored: int  # results stored before the recovery bound starts
    recovered: bool  # the worker consumed and ran its requeued tasks by itself within RECOVERY of reconnecting
    recovered_after: int | None  # seconds from the reconnection until it had (looked for longer when asked)
    held: int  # messages the queue still held at the end of that bound (ready or unacknowledged)
    addresses: tuple[str, str]  # the worker's address on the stack's network before and after the cut
    right: int
    twice: int
    lost: int


def cut_the_worker_off_mid_tasks(stack, stored_wait: float, look_longer: float = 0) -> Cut:
    expected = send_counted(stack, SENT, SECONDS)
    in_flight = wait_running(stack, list(expected), at_least=SENT)
    assert in_flight, "no task started within 30 s"
    worker = container(stack, "worker-1")
    network = stack.networks()[0]
    before = address(worker, network.name)
    before_cut = int(time.time())
    network.disconnect(worker)
    try:
        time.sleep(CUT)
    finally:
        reconnect_elsewhere(stack, worker, network)
    reconnected = time.monotonic()
    after = address(worker, network.name)
    stored = sum(1 for r in wait_stored(stack, expected, timeout=stored_wait).values() if r.get("status") == "SUCCESS")
    recovered = settled(stack, reconnected + RECOVERY - time.monotonic())
    took = round(time.monotonic() - reconnected)
    held = 0 if recovered else queued(stack)
    later = None
    if not recovered:
        for name in ("worker-1", "broker"):
            print(f"\n  {name} log, after the cut:\n    " + "\n    ".join(log(container(stack, name), before_cut)))
        if look_longer and settled(stack, look_longer):
            later = round(time.monotonic() - reconnected)
    if not recovered and later is None:  # recover as an operator would; leave the shared stack working
        container(stack, "broker").exec_run(["rabbitmqctl", "close_all_connections", "fault test: stale"])
        worker.restart(timeout=10)
        settled(stack, 90)
    twice = sum(1 for pids in runs(stack, list(expected)).values() if len(pids) > 1)
    right, lost = tally(wait_stored(stack, expected, timeout=SECONDS + 30), expected)
    return Cut(
        len(in_flight), stored, recovered, took if recovered else later, held, (before, after), right, twice, lost
    )


def test_a_worker_cut_off_mid_task_and_reconnected_loses_nothing(healthy) -> None:
    cut = cut_the_worker_off_mid_tasks(healthy, stored_wait=60, look_longer=120)
    print(
        f"\nFAULT worker cut off from the network for {CUT} s mid-task: sent {SENT}, in flight at the cut "
        f"{cut.in_flight}, results stored {cut.stored}, recovered by itself within {RECOVERY} s: {cut.recovered}, "
        f"recovered after {cut.recovered_after} s, came back {cut.right}, ran twice {cut.twice}, lost {cut.lost} "
        f"(address {' -> '.join(cut.addresses)})"
    )
    assert cut.addresses[0] != cut.addresses[1], "the worker came back on its old address: not the fault meant"
    assert cut.lost == 0
    assert cut.recovered, f"the worker did not consume again within {RECOVERY} s of being reconnected"


def test_without_heartbeats_the_cut_off_worker_does_not_recover_by_itself(healthy) -> None:
    with switched_off(healthy, "broker_heartbeat"):
        cut = cut_the_worker_off_mid_tasks(healthy, stored_wait=SECONDS + 10)
    print(
        f"\nFAULT (protection off: broker_heartbeat = 0) worker cut off from the network for {CUT} s mid-task: "
        f"sent {SENT}, in flight at the cut {cut.in_flight}, recovered by itself within {RECOVERY} s: "
        f"{cut.recovered}, still held by the broker then {cut.held}; after an operator's recovery came back "
        f"{cut.right}, ran twice {cut.twice}, lost {cut.lost} (address {' -> '.join(cut.addresses)})"
    )
    assert cut.addresses[0] != cut.addresses[1], "the worker came back on its old address: the cut proves nothing"
    # The bite is the recovery. Whether the broker still holds the tasks then depends on whether it wrote to the
    # old connection while the stand-in held the old address (a reset closes it): printed, not asserted.
    assert not cut.recovered
    assert cut.lost == 0  # the tasks were only held, and an operator's recovery gets them run


def reconnect_elsewhere(stack, worker, network) -> None:
    """Connect the worker again on another address than it had. Docker hands out the lowest free address,
    which would be its old one: a stand-in container takes that one first and is removed right after, and the
    worker is paused meanwhile, so that none of its traffic reaches the broker before its old address is
    vacant again (the stand-in's kernel would answer the old connection with a reset, which closes it)."""
    worker.pause()
    stand_in = None
    try:
        stand_in = stack.engine.containers.run(
            worker.image.id, ["sleep", "60"], detach=True, network=network.name, name=f"tcel-{stack.name}-cut-stand-in"
        )
        network.connect(worker, aliases=["worker-1"])
    finally:
        if stand_in is not None:
            stand_in.remove(force=True)
        worker.unpause()
        if not address(worker, network.name):  # whatever failed above, the worker goes back on the network
            network.connect(worker, aliases=["worker-1"])


def log(unit, since: int) -> list[str]:
    """The container's log lines since then that say what its connections did."""
    said = ("pidbox", "RESOURCE_LOCKED", "heartbeat", "onnect", "rror", "ready", "restart", "Timeout", "closing")
    lines = unit.logs(since=since).decode(errors="replace").splitlines()
    return [line[:200] for line in lines if any(word in line for word in said)][-25:]


def address(worker, network: str) -> str:
    """The container's address on the network ("" when it is not on it)."""
    worker.reload()
    return worker.attrs["NetworkSettings"]["Networks"].get(network, {}).get("IPAddress", "")


def settled(stack, timeout: float) -> bool:
    """Whether, within the timeout, the queue is empty and `tcel up` finds the worker connected."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if queued(stack) == 0 and stack.tcel("up").code == 0:
            return True
        time.sleep(1)
    return False
