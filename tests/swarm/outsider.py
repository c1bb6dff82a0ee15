"""The client side of tests/swarm/test_hostile_network.py, run inside the outsider's network namespace
(`ip netns exec`): someone on the lab's network who is not a node. Reads what to reach (and, for the second half,
the stack's authority and logins) as JSON on stdin, tries every published port first as a stranger, then as a
client given `tcel env`'s URLs and the authority while a raw AF_PACKET socket on the namespace's eth0 records the
first bytes each side sends on every TCP connection; prints what happened as JSON on stdout."""

from __future__ import annotations

import base64
import http.client
import json
import socket
import ssl
import struct
import sys
import threading
import time
from collections.abc import Callable
from functools import partial
from urllib.parse import urlsplit, urlunsplit

Outcome = str
WEB = ("flower", "metrics", "registry", "mirror")
PATHS = {"flower": "/api/workers", "metrics": "/metrics", "registry": "/v2/_catalog", "mirror": "/v2/_catalog"}
PLAIN_HELLO = {
    "broker": b"AMQP\x00\x00\x09\x01",
    "backend": b"PING\r\n",
}


def outcome(action: Callable[[], object]) -> Outcome:
    """'ok: <what it returned>' or the exception's class and message, one line."""
    try:
        return f"ok: {action()}"
    except Exception as exc:  # what the stranger meets is the point of the test
        return f"{type(exc).__name__}: {str(exc)[:200]}"


def context(cafile: str | None, verify: bool = True) -> ssl.SSLContext:
    made = ssl.create_default_context(cafile=cafile)
    if not verify:
        made.check_hostname = False
        made.verify_mode = ssl.CERT_NONE
    return made


def https(where: tuple[str, int], method: str, path: str, ctx: ssl.SSLContext, login: str | None) -> tuple[int, dict]:
    connection = http.client.HTTPSConnection(*where, context=ctx, timeout=15)
    headers = {"Accept": "application/vnd.docker.distribution.manifest.v2+json"}
    if login:
        headers["Authorization"] = "Basic " + base64.b64encode(login.encode()).decode()
    try:
        connection.request(method, path, headers=headers)
        answer = connection.getresponse()
        body = answer.read()
        return answer.status, {**dict(answer.getheaders()), "body": body[:4000].decode(errors="replace")}
    finally:
        connection.close()


def plain_answer(where: tuple[str, int], hello: bytes) -> str:
    """The first bytes a port answers a client speaking in clear text, as hex (empty when it closes)."""
    with socket.create_connection(where, timeout=10) as raw:
        raw.sendall(hello)
        try:
            return raw.recv(64).hex()
        except (ConnectionResetError, TimeoutError):
            return ""


def handshake(where: tuple[str, int], host: str, ctx: ssl.SSLContext) -> str:
    with socket.create_connection(where, timeout=10) as raw, ctx.wrap_socket(raw, server_hostname=host) as tls:
        return str(tls.version())


def broker(url: str, verify: bool, cafile: str | None = None) -> object:
    from kombu import Connection

    ssl_options = {"ca_certs": cafile, "cert_reqs": ssl.CERT_REQUIRED if verify else ssl.CERT_NONE}
    if verify:
        ssl_options["server_hostname"] = None  # kombu fills in the URL's host, py-amqp checks it
    with Connection(url, ssl=ssl_options, connect_timeout=10) as connection:
        connection.ensure_connection(max_retries=1)
        return connection.connection.server_properties.get("product")


def backend(url: str, verify: bool) -> object:
    import redis

    if not verify:
        url = url.split("?", 1)[0] + "?ssl_cert_reqs=none"
    client = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=10)
    try:
        return client.ping()
    finally:
        client.close()


def with_login(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{host}" if user else host))


def stranger(plan: dict) -> dict[str, dict[str, Outcome]]:
    """Everything someone without the authority or the logins tries."""
    found: dict[str, dict[str, Outcome]] = {}
    insecure = context(None, verify=False)
    for name, where in plan["ports"].items():
        tried = found.setdefault(name, {})
        tried["system authorities"] = outcome(partial(handshake, where, plan["names"][name], context(None)))
        hello = PLAIN_HELLO[name] if name in PLAIN_HELLO else http_hello(name, where[0])
        tried["clear text"] = outcome(partial(plain_answer, where, hello))
    for name, url in (("broker", plan["broker_url"]), ("backend", plan["backend_url"])):
        attempt = broker if name == "broker" else backend
        user = "guest" if name == "broker" else ""
        found[name]["no login, TLS unverified"] = outcome(partial(attempt, with_login(url, user, "guest"), False))
        wrong = with_login(url, urlsplit(url).username or "", "wrong")
        found[name]["wrong password, TLS unverified"] = outcome(partial(attempt, wrong, False))
    for name in WEB:
        where = plan["ports"][name]
        found[name]["no login, TLS unverified"] = outcome(partial(status, where, "GET", PATHS[name], insecure, None))
        if name in ("registry", "mirror"):
            found[name]["anonymous push, TLS unverified"] = outcome(
                partial(status, where, "POST", "/v2/tcel-worker/blobs/uploads/", insecure, None)
            )
            found[name]["anonymous pull, TLS unverified"] = outcome(
                partial(status, where, "GET", f"/v2/tcel-worker/manifests/{plan['tag']}", insecure, None)
            )
    return found


def http_hello(name: str, host: str) -> bytes:
    return f"GET {PATHS[name]} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()


def status(where: tuple[str, int], method: str, path: str, ctx: ssl.SSLContext, login: str | None) -> int:
    return https(where, method, path, ctx, login)[0]


def client(plan: dict) -> dict[str, dict[str, Outcome]]:
    """Everything a client given the authority and the logins does."""
    ca = plan["ca_file"]
    found: dict[str, dict[str, Outcome]] = {name: {} for name in plan["ports"]}
    found["broker"]["tcel env's URL and the authority"] = outcome(partial(broker, plan["broker_url"], True, ca))
    found["backend"]["tcel env's URL and the authority"] = outcome(partial(backend, plan["backend_url"], True))
    verified = context(ca)
    for name in WEB:
        where = (plan["names"][name], plan["ports"][name][1])
        login = plan["logins"][name]
        found[name]["login and the authority"] = outcome(partial(status, where, "GET", PATHS[name], verified, login))
        if name in ("registry", "mirror"):
            manifest = f"/v2/tcel-worker/manifests/{plan['tag']}"
            found[name]["pull with the login"] = outcome(partial(status, where, "GET", manifest, verified, login))
    where = (plan["names"]["registry"], plan["ports"]["registry"][1])
    found["registry"]["push with the login"] = outcome(partial(push, where, verified, plan["logins"]["registry"]))
    return found


def push(where: tuple[str, int], ctx: ssl.SSLContext, login: str) -> int:
    """Start a blob upload (202), then cancel it: nothing of it stays."""
    status, headers = https(where, "POST", "/v2/tcel-worker/blobs/uploads/", ctx, login)
    if status == 202:
        upload = urlsplit(headers["Location"])
        https(where, "DELETE", f"{upload.path}?{upload.query}", ctx, login)
    return status


class Capture:
    """The first TCP payload each side sends on every connection seen on eth0, keyed by the remote port."""

    def __init__(self, local: str) -> None:
        self.local = socket.inet_aton(local)
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(0x0003))
        self.sock.bind(("eth0", 0))
        self.sock.settimeout(0.2)
        self.first: dict[tuple[str, int], dict[str, str]] = {}
        self.opened: set[tuple[str, int]] = set()  # connections whose SYN this capture saw
        self.running = True
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while self.running:
            try:
                frame = self.sock.recv(65535)
            except TimeoutError:
                continue
            self.seen(frame)

    def seen(self, frame: bytes) -> None:
        if len(frame) < 34 or frame[12:14] != b"\x08\x00" or frame[23] != 6:  # IPv4, TCP
            return
        ip = frame[14:]
        header = (ip[0] & 0x0F) * 4
        total = struct.unpack("!H", ip[2:4])[0]
        tcp = ip[header:total]
        source_port, destination_port = struct.unpack("!HH", tcp[:4])
        payload = tcp[(tcp[12] >> 4) * 4 :]
        outgoing = ip[12:16] == self.local
        address = socket.inet_ntoa(ip[16:20] if outgoing else ip[12:16])
        remote, local = (destination_port, source_port) if outgoing else (source_port, destination_port)
        key = (f"{address}:{remote}", local)
        if outgoing and tcp[13] & 0x02:  # SYN: a connection opened while capturing
            self.opened.add(key)
        # a connection opened before the capture (the stranger's, closing) shows only its later bytes
        if not payload or key not in self.opened:
            return
        sides = self.first.setdefault(key, {})
        sides.setdefault("client" if outgoing else "server", payload[:8].hex())

    def stop(self) -> dict[str, list[dict[str, str]]]:
        time.sleep(0.5)
        self.running = False
        self.thread.join()
        self.sock.close()
        by_port: dict[str, list[dict[str, str]]] = {}
        for (remote, _), sides in self.first.items():
            by_port.setdefault(remote, []).append(sides)
        return by_port


def main() -> None:
    plan = json.load(sys.stdin)
    for name, where in plan["ports"].items():
        plan["ports"][name] = tuple(where)
    report = {"stranger": stranger(plan)}
    capture = Capture(plan["outsider"])
    try:
        report["client"] = client(plan)
    finally:
        report["first_bytes"] = capture.stop()
    json.dump(report, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
