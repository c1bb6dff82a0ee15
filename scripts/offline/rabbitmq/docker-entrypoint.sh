#!/bin/sh
# Entry point of tcel-offline/rabbitmq, following the official rabbitmq image:
#   RABBITMQ_DEFAULT_USER / RABBITMQ_DEFAULT_PASS / RABBITMQ_DEFAULT_VHOST create that
#   user and vhost when the node first boots on an empty data directory, and the
#   guest user is then never created (RabbitMQ reads these variables itself).
#   Without them Debian's default applies: guest/guest, usable from loopback only.
#   Data lives in /var/lib/rabbitmq/mnesia/rabbit@<hostname>: give the container a
#   fixed --hostname. The server runs as the rabbitmq user.
set -eu

if [ $# -eq 0 ]; then
    set -- rabbitmq-server
fi

# `docker run IMAGE -foo` means `rabbitmq-server -foo`.
if [ "${1#-}" != "$1" ]; then
    set -- rabbitmq-server "$@"
fi

if [ "$1" != rabbitmq-server ]; then
    exec "$@"
fi
shift

data=/var/lib/rabbitmq
cookie="$data/.erlang.cookie"

if [ "$(id -u)" = 0 ]; then
    mkdir -p "$data"
    # One cookie per data volume, not one baked into the image.
    if [ ! -s "$cookie" ]; then
        ( umask 077; tr -dc 'A-Za-z0-9' </dev/urandom | head -c 32 >"$cookie" )
    fi
    chmod 400 "$cookie"
    # A named volume or bind mount may come in owned by root.
    find "$data" \! -user rabbitmq -exec chown rabbitmq:rabbitmq '{}' +

    # Exec the real server script, not Debian's /usr/sbin/rabbitmq-server wrapper
    # (which goes through su and, as PID 1, ignores SIGTERM): it forwards SIGTERM to
    # the Erlang VM, which stops the node cleanly in about a second.
    exec setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups \
        /usr/lib/rabbitmq/bin/rabbitmq-server "$@"
fi

exec /usr/lib/rabbitmq/bin/rabbitmq-server "$@"
