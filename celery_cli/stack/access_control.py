"""Who may do what on a stack's broker and backend: one RabbitMQ user and one Redis ACL user per service role
(credentials.ROLES), each limited to what that service needs, written into the files the broker and the backend
read at boot."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from ..credentials import ROLES, Credentials, role_user
from ..names import AUTOSCALE_KEY

# What a monitor (Flower, the exporter and the autoscaler) does on the broker: receive events (a queue
# celeryev.<id> bound to the topic exchange celeryev) and broadcast remote control (the fanout exchange
# celery.pidbox) with replies on a queue <id>.reply.celery.pidbox bound to reply.celery.pidbox. Neither may publish
# to the default exchange (amq.default) or to a task queue's exchange: no task can be sent with their login.
# Passive declares (queue lengths) need no permission.
_MONITOR_QUEUES = r"celeryev\..*|.*\.reply\.celery\.pidbox"
MONITOR_PERMISSIONS = {
    "configure": rf"^(celeryev|celery\.pidbox|reply\.celery\.pidbox|{_MONITOR_QUEUES})$",
    "write": rf"^(celery\.pidbox|{_MONITOR_QUEUES})$",
    "read": rf"^(celeryev|reply\.celery\.pidbox|{_MONITOR_QUEUES})$",
}
# Workers (and the beat) declare the task queues a project names, consume them, publish tasks (a task may send
# tasks), events and replies: everything on the vhost, but no tag (no management, no policies, no other users).
EVERYTHING = {"configure": ".*", "write": ".*", "read": ".*"}
BROKER_PERMISSIONS = {"worker": EVERYTHING, "beat": EVERYTHING, "flower": MONITOR_PERMISSIONS}
BROKER_PERMISSIONS["metrics"] = MONITOR_PERMISSIONS
VHOST = "/"

# Redis ACL rules per user (Redis 7). Commands a worker never needs are refused: flushing, configuration,
# debugging, shutdown, ACL, KEYS (all in @dangerous), and FUNCTION LOAD/DELETE; tcel's task index is the
# function tcel_index that the CLI loads (FUNCTION LOAD) and the workers only call (FCALL). Celery 5.7's Redis
# backend runs Lua for chords (on_chord_part_return: redis-py's register_script, EVALSHA then SCRIPT LOAD), so
# the workers keep EVAL/EVALSHA/SCRIPT LOAD: Redis's ACL cannot allow some scripts only, but a script's commands
# are checked against the caller's rules, so @dangerous stays refused inside Lua too.
_WORKER_RULES = "~* &* +@all -@dangerous -@scripting +fcall +eval +evalsha +script|load +script|exists"
_NO_PUBLISH = "-publish -spublish"
REDIS_RULES = {
    "worker": _WORKER_RULES,
    # RedBeat's lock (redis-py's Lock and its own extend) runs Lua scripts too: the workers' rules cover it
    "beat": _WORKER_RULES,
    # Flower reads results; the exporter reads results, the index and the server's INFO; the autoscaler
    # keeps its state with SET, under its one key: every key is readable (%R~, Redis 7's key permissions), only
    # that one writable (%W~), so that its login cannot overwrite a result or the index. Both may subscribe
    # (Celery's result consumer) but not publish: a message on a result's channel (celery-task-meta-<id>) is
    # taken for the result by whoever waits for it (Celery's AsyncResult, tcel's result_follower)
    "flower": f"~* &* +@read +@connection +@pubsub +@transaction -keys {_NO_PUBLISH}",
    "metrics": f"%R~* %W~{AUTOSCALE_KEY} &* +@read +@connection +@pubsub +@transaction -keys +info +set +expire "
    + _NO_PUBLISH,
}
ADMIN_REDIS_RULES = "~* &* +@all"  # the CLI on the host: `purge`, the index's function, its own reads
REDIS_BROKER_ROLES = ("worker",)  # the roles a Redis broker has users for


def broker_definitions(credentials: Credentials) -> bytes:
    """RabbitMQ's definitions (loaded at every boot: `load_definitions`): the vhost, the CLI's administrator and
    one user per role with its permissions. A broker volume made by an older tcel (the one user) gets the others
    at its next boot; the administrator's password is set again to the kept one."""
    admin = {"name": credentials.broker_user, "tags": ["administrator"]}
    users = [{**admin, **_password_hash(credentials.broker_user, credentials.broker_password)}]
    permissions = [{"user": credentials.broker_user, "vhost": VHOST, **EVERYTHING}]
    for role in _roles(credentials):
        user, password = role_user(role), credentials.role_password(role)
        users.append({"name": user, "tags": [], **_password_hash(user, password)})
        permissions.append({"user": user, "vhost": VHOST, **BROKER_PERMISSIONS[role]})
    document = {"vhosts": [{"name": VHOST}], "users": users, "permissions": permissions}
    return json.dumps(document, indent=1).encode()


def _password_hash(user: str, password: str) -> dict[str, str]:
    """RabbitMQ's rabbit_password_hashing_sha256: base64(salt + sha256(salt + password)), with a 4-byte salt. The
    salt is derived from the user and password, so that the same password gives the same file (the container
    and Swarm secret stay the same from one `up` to the next)."""
    salt = hmac.new(password.encode(), user.encode(), hashlib.sha256).digest()[:4]
    digest = hashlib.sha256(salt + password.encode()).digest()
    return {
        "password_hash": base64.b64encode(salt + digest).decode(),
        "hashing_algorithm": "rabbit_password_hashing_sha256",
    }


def redis_acl(credentials: Credentials) -> str:
    """The backend's `user` lines: `default` switched off, the CLI's user with every command, one user per role
    with its rules; passwords as SHA-256 hashes (`#...`), never in clear."""
    admin = (credentials.backend_user, credentials.backend_password)
    return _acl_lines(admin, {role: credentials.role_password(role) for role in _roles(credentials)})


def redis_broker_acl(credentials: Credentials) -> str:
    """A Redis broker's `user` lines, as the backend's: `default` off, the CLI's broker user with every command,
    and the workers' user (the only role a Redis broker serves: Flower, the exporter, the autoscaler and the
    beat are refused on it), with the same password as on the backend."""
    roles = {role: credentials.role_password(role) for role in REDIS_BROKER_ROLES if credentials.role_password(role)}
    return _acl_lines((credentials.broker_user, credentials.broker_password), roles)


def _acl_lines(admin: tuple[str, str], roles: dict[str, str]) -> str:
    # `default` is off and has no password: nobody logs in as it. It keeps every command and key all the same,
    # because Redis replays the append-only file as `default` and re-checks ACLs at each EXEC: with `-@all` the
    # transactions in the file (RedBeat's meta, Celery's chords, kombu's pipelines) were dropped at the next boot
    # (redis/redis#14541)
    lines = [f"user default off resetpass {ADMIN_REDIS_RULES}"]
    lines.append(f"user {admin[0]} on #{_sha256(admin[1])} {ADMIN_REDIS_RULES}")
    lines += [f"user {role_user(role)} on #{_sha256(password)} {REDIS_RULES[role]}" for role, password in roles.items()]
    return "".join(f"{line}\n" for line in lines)


def _roles(credentials: Credentials) -> list[str]:
    return [role for role in ROLES if credentials.role_password(role)]


def _sha256(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()
