"""The broker blocks publishers (a memory alarm raised inside it) while tasks are being sent: each send ends
within the confirm timeout with one clear line, and every task reported sent comes back once it clears."""

import threading
import time

from celery_cli.publisher import CONFIRM_TIMEOUT
from tests.faults.conftest import container, results, tally

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
                assert took < CONFIRM_TIMEOUT + 5, f"{took:.1f} s to give up"
                blocked[n] = result.stderr.split(" was not confirmed")[0].split()[-1]  # the task id it names
            n += 1
    finally:
        alarm.join()
        rabbitmqctl(stack, "eval", f"vm_memory_monitor:set_vm_memory_high_watermark({limit}).")
    assert sent and len(blocked) == 2
    right, lost = tally(results(stack, list(sent)), sent)
    unconfirmed = results(stack, list(blocked.values()), timeout=10)
    ran_anyway = sum(1 for record in unconfirmed.values() if record["state"] == "SUCCESS")
    print(f"\nFAULT broker blocked publishers (memory alarm) while sending: reported sent {len(sent)}, came back "
          f"{right}, lost {lost}; not confirmed within {CONFIRM_TIMEOUT:g} s {len(blocked)} (exit 4, of which "
          f"{ran_anyway} ran once the alarm cleared)")
    assert lost == 0
