"""Flower as an optional service (`tcel up --flower`), on one stack started with it: its login, status,
`tcel flower`, 401s without the login, Prometheus metrics, the REST API against `tcel result`, a real headless
Chromium logging in, and `up` without --flower leaving it alone; `down` removing it comes last."""

from __future__ import annotations

import base64
import json
import os
import shutil
import ssl
import stat
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, StackProject, free_port, make_project

# found on PATH, as scripts/lib.sh's ensure_chromium looks for them (Debian puts both in /usr/bin)
CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
# Screenshots of the browser test: kept after the run (pytest's own temporary directories are rotated away
# by later runs), ignored by git.
ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture(scope="module")
def flower_stack(engine, tmp_path_factory) -> Iterator[StackProject]:
    """One stack with Flower and two workers, shared by this module's tests."""
    with make_project(engine, tmp_path_factory.mktemp("flower")) as project:
        project.env["TCEL_FLOWER_PORT"] = str(free_port())
        result = project.tcel("up", "--flower", "--workers", "2")
        assert result.code == 0, result.stderr
        # at once: Flower must see even the first task of a worker that just started
        project.first_task = project.tcel("add", "2", "3", "--quiet").stdout.strip()
        yield project


def verified(access) -> ssl.SSLContext | None:
    """A context verifying the stack's authority when the stack serves TLS (None: plain HTTP)."""
    return ssl.create_default_context(cafile=access.ca_file) if access.tls else None


def get(project: StackProject, path: str, login: tuple[str, str] | None = None) -> tuple[int, bytes]:
    """GET a path of the project's Flower from the host, with a basic-auth login or none."""
    access = project.connection  # over HTTPS on a stack that serves TLS (Swarm), verified by its authority
    request = urllib.request.Request(access.flower_url().rstrip("/") + path)
    if login:
        request.add_header("Authorization", "Basic " + base64.b64encode(":".join(login).encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=10, context=verified(access)) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def login(project: StackProject) -> tuple[str, str]:
    access = project.connection
    return access.flower_user, access.flower_password


def test_up_with_flower_keeps_a_generated_login_and_status_shows_it_ready(flower_stack: StackProject) -> None:
    access = flower_stack.connection
    assert access.flower_user.startswith("tcel-") and len(access.flower_password) >= 24
    view = flower_stack.tcel_json("status")
    flower = [s for s in view["services"] if s["service"] == "flower"]
    assert len(flower) == 1 and flower[0]["state"] == "running" and flower[0]["ready"] is True, flower
    assert flower[0]["name"] == f"tcel-{flower_stack.name}-flower"
    assert flower[0]["url"] == f"http://127.0.0.1:{access.flower_port}/"
    assert view["healthy"] is True
    table = flower_stack.tcel("status")
    assert table.code == 0 and f"http://127.0.0.1:{access.flower_port}/" in table.stdout
    assert access.flower_password not in table.stdout + table.stderr
    container = flower_stack.engine.containers.get(f"tcel-{flower_stack.name}-flower")
    assert container.labels["io.tcel.project"] == flower_stack.name and container.labels["io.tcel.service"] == "flower"
    assert container.attrs["HostConfig"]["PortBindings"]["5555/tcp"][0]["HostIp"] == "127.0.0.1"
    # the secrets are files under /run/secrets (flowerconfig.py reads them), not what `docker inspect` shows
    shown = " ".join((container.attrs["Config"]["Cmd"] or []) + (container.attrs["Config"]["Env"] or []))
    for secret in (access.flower_password, access.broker_password, access.backend_password):
        assert secret not in shown
    read = container.exec_run(["cat", "/run/secrets/tcel_flower_basic_auth"])
    assert read.exit_code == 0 and read.output.decode() == f"{access.flower_user}:{access.flower_password}"


def test_flower_command_prints_the_url_and_masks_the_password_unless_asked(flower_stack: StackProject) -> None:
    access = flower_stack.connection
    shown = flower_stack.tcel("flower")
    assert shown.code == 0, shown.stderr
    assert shown.stdout.strip() == access.flower_url()
    assert access.flower_user in shown.stderr and access.flower_password not in shown.stdout + shown.stderr
    document = flower_stack.tcel_json("flower")
    assert document["url"] == access.flower_url() and document["password"] != access.flower_password
    full = flower_stack.tcel("flower", "--show-password", "--json")
    assert json.loads(full.stdout)["password"] == access.flower_password


def test_flower_open_uses_the_browser_there_is_and_says_when_there_is_none(
    flower_stack: StackProject, tmp_path: Path
) -> None:
    opened = tmp_path / "opened"
    browser = tmp_path / "browser"
    browser.write_text(f'#!/bin/sh\necho "$1" > {opened}\n')
    browser.chmod(browser.stat().st_mode | stat.S_IXUSR)
    result = flower_stack.tcel("flower", "--open", env={"BROWSER": str(browser)})
    assert result.code == 0 and "opened" in result.stderr, result.stderr
    assert opened.read_text().strip() == flower_stack.connection.flower_url()
    nothing = tmp_path / "no-browsers"
    nothing.mkdir()
    env = {"BROWSER": "", "PATH": str(nothing), "DISPLAY": "", "WAYLAND_DISPLAY": ""}
    result = flower_stack.tcel("flower", "--open", env=env)
    assert result.code == 0 and "no browser to open" in result.stderr, result.stderr


def test_without_the_login_pages_api_and_metrics_answer_401(flower_stack: StackProject) -> None:
    user, password = login(flower_stack)
    for path in ("/", "/tasks", "/api/workers", "/api/tasks", "/metrics"):
        assert get(flower_stack, path)[0] == 401, path
        assert get(flower_stack, path, (user, password + "x"))[0] == 401, path
        assert get(flower_stack, path, (user, password))[0] == 200, path
    assert get(flower_stack, "/healthcheck") == (200, b"OK")


def test_metrics_are_prometheus_text_naming_the_worker(flower_stack: StackProject) -> None:
    status, body = get(flower_stack, "/metrics", login(flower_stack))
    assert status == 200
    for worker in ("celery@worker-1", "celery@worker-2"):
        assert f'flower_worker_online{{worker="{worker}"}} 1.0' in body.decode()


def flower_task(project: StackProject, task_id: str) -> dict:
    """Flower's view of a task once it has seen it succeed (or what it has after 15 s)."""
    deadline = time.monotonic() + 15
    while True:
        status, body = get(project, f"/api/task/info/{task_id}", login(project))
        info = json.loads(body) if status == 200 else {}
        if info.get("state") == "SUCCESS" or time.monotonic() > deadline:
            return info
        time.sleep(0.2)


def test_flower_sees_the_first_task_sent_right_after_up(flower_stack: StackProject) -> None:
    """Workers send task events from the start (celeryconfig.py); Flower's own switch comes only every 5 s."""
    info = flower_task(flower_stack, flower_stack.first_task)
    assert info.get("state") == "SUCCESS" and info["received"] and info["name"] == "tasks.add", info


def test_flower_and_tcel_result_agree_on_a_task(flower_stack: StackProject) -> None:
    done = flower_stack.tcel_json("add", "2", "3", "--wait")
    info = flower_task(flower_stack, done["id"])
    stored = flower_stack.tcel_json("result", done["id"])
    assert info["state"] == stored["state"] == "SUCCESS", info
    assert info["name"] == stored["name"] == "tasks.add"
    assert info["worker"] == stored["worker"] in {"celery@worker-1", "celery@worker-2"}
    assert json.loads(info["result"]) == stored["result"] == 5
    assert info["args"] == stored["args"] == "[2, 3]"
    status, body = get(flower_stack, "/api/workers?refresh=1", login(flower_stack))
    assert status == 200 and all("tasks.add" in worker["registered"] for worker in json.loads(body).values())


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    """Debian's chromium, headless, driven by selenium through Debian's chromedriver."""
    if not (CHROMIUM and CHROMEDRIVER):
        if os.environ.get("CI"):
            pytest.fail("CI needs chromium and chromedriver (scripts/test installs them)")
        pytest.skip("no chromium/chromedriver here: scripts/test installs them")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--window-size=1280,900",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(tmp_path / "chromium-profile", ignore_errors=True)


def test_a_browser_is_refused_then_logs_in_sees_every_worker_and_finds_a_task(
    flower_stack: StackProject, browser
) -> None:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def wait(condition) -> None:  # the tables refresh themselves: a row read may be replaced meanwhile
        WebDriverWait(browser, 20, ignored_exceptions=(StaleElementReferenceException,)).until(condition)

    task_id = flower_stack.tcel("add", "2", "3", "--quiet").stdout.strip()
    user, password = login(flower_stack)
    port = flower_stack.connection.flower_port
    browser.get(f"http://127.0.0.1:{port}/tasks")
    navigation = "return performance.getEntriesByType('navigation')[0].responseStatus"
    assert browser.execute_script(navigation) == 401
    assert task_id not in browser.page_source
    browser.get(f"http://{user}:{password}@127.0.0.1:{port}/")  # basic auth, as a browser's prompt sends it
    workers = {
        f"celery@{c.attrs['Config']['Hostname']}"
        for c in flower_stack.containers()
        if c.labels.get("io.tcel.service") == "worker"
    }
    assert len(workers) == 2

    def rows(page) -> list[str]:  # as in the document: .text would follow the layout's line breaks
        return [row.get_attribute("textContent") for row in page.find_elements(By.CSS_SELECTOR, "table tbody tr")]

    def online(page) -> set[str]:
        return {w for w in workers for row in rows(page) if w in row and "Online" in row}

    wait(lambda page: online(page) == workers)
    assert browser.title.startswith("Workers") and browser.execute_script(navigation) == 200
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "flower-dashboard.png"))
    browser.get(f"http://127.0.0.1:{port}/tasks")  # the browser keeps the login for the site
    wait(lambda page: any(task_id in row for row in rows(page)))
    screenshot = ARTIFACTS / "flower-tasks.png"
    browser.save_screenshot(str(screenshot))
    assert screenshot.stat().st_size > 10_000
    print(f"FLOWER screenshots: {ARTIFACTS}/flower-dashboard.png, {screenshot}")

    # a worker removed by `scale` leaves the dashboard (no ghost listed offline), then comes back
    assert flower_stack.tcel("scale", "1").code == 0
    browser.get(f"http://127.0.0.1:{port}/")
    WebDriverWait(browser, 60, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda page: (shown := {w for w in workers for row in rows(page) if w in row}) and len(shown) == 1
    )
    assert not any("Offline" in row for row in rows(browser)), rows(browser)
    assert flower_stack.tcel("scale", "2").code == 0


def test_up_without_flower_leaves_it_running(flower_stack: StackProject) -> None:
    before = flower_stack.engine.containers.get(f"tcel-{flower_stack.name}-flower")
    report = flower_stack.tcel_json("up")
    assert report["changed"] is False and report["flower"]["url"] == flower_stack.connection.flower_url()
    after = flower_stack.engine.containers.get(f"tcel-{flower_stack.name}-flower")
    assert after.id == before.id and after.status == "running"


def test_up_fails_in_one_line_when_flower_does_not_answer(flower_stack: StackProject) -> None:
    """A Flower that stops answering (its process stopped, the container still running) makes `up` time out
    naming it, not hang and not pass."""
    container = flower_stack.engine.containers.get(f"tcel-{flower_stack.name}-flower")
    flower_process = "$(cat /proc/1/task/1/children)"  # Docker's init is PID 1, Flower its child
    assert container.exec_run(["sh", "-c", f"kill -STOP {flower_process}"]).exit_code == 0
    try:
        result = flower_stack.tcel("up", "--ready-timeout", "3")
    finally:
        container.exec_run(["sh", "-c", f"kill -CONT {flower_process}"])
    assert result.code == 6, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("error: flower not ready after 3s: the Flower at") and "Traceback" not in result.stderr


def test_a_taken_flower_port_is_refused_before_anything_is_made(engine, tmp_path: Path) -> None:
    import socket

    with make_project(engine, tmp_path) as project, socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = project.tcel("up", "--flower", "--flower-port", str(port))
        assert result.code == 5, result.stderr
        assert f"port {port} on 127.0.0.1 for the flower is already in use" in result.stderr
        assert project.containers() == []


def test_down_removes_flower(flower_stack: StackProject) -> None:
    result = flower_stack.tcel("down")
    assert result.code == 0, result.stderr
    assert [c for c in flower_stack.containers() if c.labels.get("io.tcel.service") == "flower"] == []
