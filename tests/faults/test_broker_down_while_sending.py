"""The broker stops while tasks are being sent: tcel never says "sent" for a message the broker did not take."""

import threading
import time

from tests.faults.conftest import results, tally


def test_every_task_reported_sent_comes_back(healthy) -> None:
    stack = healthy
    broker = stack.engine.containers.get(f"tcel-{stack.name}-broker")
    stopper = threading.Timer(1.5, lambda: broker.stop(timeout=10))
    stopper.start()
    sent: dict[str, int] = {}
    refused = 0
    try:
        deadline = time.monotonic() + 60
        n = 0
        while refused < 3 and time.monotonic() < deadline:
            result = stack.tcel("tsum", str(n), "--quiet")
            if result.code == 0:
                sent[result.stdout.strip()] = n
            else:
                assert result.code == 4 and result.stdout == ""
                assert "was not sent" in result.stderr and "Traceback" not in result.stderr
                refused += 1
            n += 1
    finally:
        stopper.join()
    assert sent and refused == 3
    assert stack.tcel("up").code == 0
    right, lost = tally(results(stack, list(sent)), sent)
    print(
        f"\nFAULT broker stopped while sending: reported sent {len(sent)}, came back {right}, lost {lost}, "
        f"refused {refused}"
    )
    assert lost == 0
