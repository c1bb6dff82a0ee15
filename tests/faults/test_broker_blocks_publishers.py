"""The broker blocks publishers (a memory alarm raised inside it) while tasks are being sent: each send ends
within the confirm timeout with one clear line, and every task reported sent comes back once it clears; the
same for a window of many tasks in flight (`tcel bench`), whose count of confirmed tasks the queue holds."""

import re
import threading
import time

from celery_cli.publish_confirms import CONFIRM_TIMEOUT
from tests.faults.conftest import container, results, tally

# Besides the confirm timeout a failing send spends its process's start and its 1 s close of the connection,
# which a blocked broker never answers; under load the start takes up to a second or so.
SLACK = 3

LIMIT_TERM = "vm_memory_monitor:get_vm_memory_high_watermark()."


def rabbitmqctl(stack, *args: str) -> str:
    done = container(stack, "broker").exec_run(["rabbitmqctl", *args])
    assert done.exit_code == 0, done.output
    return done.output.decode().strip()


def test_a_broker_blocking_publishers_gets_a_clear_error_and_nothing_sent_is_lost(healthy) -> None:
    stack = healthy
    limit = rabbitmqctl(stack, "eval", LIMIT_TERM)  # the broker's own memory limit, put back afterwards
    alarm = threading.Timer(1.5, rabbitmqctl, (stack, "set_vm_memory_high_watermark", "0.000001"))
    alarm.start()
    sent: dict[str, int] = {}
    blocked: dict[int, str] = {}
    gave_up: list[float] = []
    try:
        deadline = time.monotonic() + 60
        n = 0
        while len(blocked) < 2 and time.monotonic() < deadline:
            began = time.monotonic()
            result = stack.tcel("tsum", str(n), "--quiet")
            if result.code == 0:
                sent[result.stdout.strip()] = n
            else:
                took = time.monotonic() - began
                assert result.code == 4 and result.stdout == "" and "Traceback" not in result.stderr
                assert len(result.stderr.strip().splitlines()) == 1, result.stderr
                assert "is blocking publishers" in result.stderr and "may or may not be queued" in result.stderr
                assert took < CONFIRM_TIMEOUT + SLACK, f"{took:.1f} s to give up"
                blocked[n] = result.stderr.split(" was not confirmed")[0].split()[-1]  # the task id it names
                gave_up.append(took)
            n += 1
    finally:
        alarm.join()
        rabbitmqctl(stack, "eval", f"vm_memory_monitor:set_vm_memory_high_watermark({limit}).")
    assert sent and len(blocked) == 2
    right, lost = tally(results(stack, list(sent)), sent)
    unconfirmed = results(stack, list(blocked.values()), timeout=10)
    ran_anyway = sum(1 for record in unconfirmed.values() if record["state"] == "SUCCESS")
    print(
        f"\nFAULT broker blocked publishers (memory alarm) while sending: reported sent {len(sent)}, came back "
        f"{right}, lost {lost}; not confirmed within {CONFIRM_TIMEOUT:g} s {len(blocked)} (exit 4, of which "
        f"{ran_anyway} ran once the alarm cleared; each process took {', '.join(f'{t:.1f}' for t in gave_up)} s)"
    )
    assert lost == 0


BENCH = 100_000  # far more than this machine sends before the alarm: the send is cut short mid-window
COUNTED = ("confirmed", "written but not confirmed", "not sent")  # the error's counts, each left out when 0


def test_a_window_of_sends_stops_within_the_confirm_timeout_and_reports_only_what_was_confirmed(healthy) -> None:
    """`tcel bench` with up to 1,000 tasks written ahead of their confirms; the alarm is raised while it sends.
    The worker is stopped first, so that the `celery` queue afterwards holds exactly what the broker took:
    every task the error counts as confirmed, plus at most those it counts as written but not confirmed."""
    stack = healthy
    container(stack, "worker-1").stop(timeout=10)
    before = ready(stack)
    limit = rabbitmqctl(stack, "eval", LIMIT_TERM)
    raised: list[float] = []

    def raise_alarm_mid_send() -> None:
        deadline = time.monotonic() + 60
        while ready(stack) < before + 1000 and time.monotonic() < deadline:  # the bench is well under way
            time.sleep(0.05)
        rabbitmqctl(stack, "set_vm_memory_high_watermark", "0.000001")
        raised.append(time.monotonic())  # the alarm is in force by now (it may have been for a second or so)

    alarm = threading.Thread(target=raise_alarm_mid_send)
    alarm.start()
    try:
        result = stack.tcel("bench", "-n", str(BENCH), "--timeout", "5", "--json")
        ended = time.monotonic()
    finally:
        alarm.join()
        rabbitmqctl(stack, "eval", f"vm_memory_monitor:set_vm_memory_high_watermark({limit}).")
    try:
        took = ended - raised[0]
        line = result.stderr.strip()
        confirmed, unconfirmed, unsent = (count(line, what) for what in COUNTED)
        held = settled_count(stack) - before
        print(
            f"\nFAULT broker blocked publishers (memory alarm) during tcel bench -n {BENCH}: exit {result.code}, "
            f"reported confirmed {confirmed}, written but not confirmed {unconfirmed}, not sent {unsent}; the "
            f"queue holds {held}; error {took:.1f} s after the alarm was in force (confirm timeout "
            f"{CONFIRM_TIMEOUT:g} s)\n  {line}"
        )
        assert result.code == 4 and result.stdout == "" and "Traceback" not in result.stderr, result.stderr
        assert len(line.splitlines()) == 1 and "blocks publishers" in line, line
        assert confirmed > 0 and confirmed + unconfirmed + unsent == BENCH, line
        assert took < CONFIRM_TIMEOUT + SLACK, f"{took:.1f} s from the alarm to the error"
        assert confirmed <= held <= confirmed + unconfirmed
    finally:
        rabbitmqctl(stack, "purge_queue", "celery")  # the bench's tasks: nobody waits for them


def ready(stack, queue: str = "celery") -> int:
    """Messages ready in the queue, by a passive declare through the broker's published port (no consumer
    runs here, so that is all it holds)."""
    from kombu import Connection

    with Connection(stack.connection.broker_url(), connect_timeout=5) as connection:
        return connection.default_channel.queue_declare(queue, passive=True).message_count


def settled_count(stack) -> int:
    """The queue's count once it stopped changing (the broker may still be writing what it read before)."""
    last = ready(stack)
    while True:
        time.sleep(1)
        now = ready(stack)
        if now == last:
            return now
        last = now


def count(line: str, what: str) -> int:
    found = re.search(rf"(\d+) {what}\b", line)
    return int(found.group(1)) if found else 0
