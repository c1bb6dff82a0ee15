#!/bin/sh
# Entry point of tcel-offline/rabbitmq:4, following the official rabbitmq image:
#   RabbitMQ itself reads RABBITMQ_DEFAULT_USER / RABBITMQ_DEFAULT_PASS / RABBITMQ_DEFAULT_VHOST and
#   creates that user and vhost when the node first boots on an empty data directory (guest is then never
#   created). Data lives in /var/lib/rabbitmq/mnesia/rabbit@<hostname>: give the container a fixed
#   --hostname. rabbitmq* commands run as the rabbitmq user; anything else runs as given.
set -eu

if [ $# -eq 0 ]; then
    set -- rabbitmq-server
fi

case "$1" in
    rabbitmq*)
        if [ "$(id -u)" = 0 ]; then
            if [ "$1" = rabbitmq-server ]; then
                # A named volume or bind mount may come in owned by root.
                find /var/lib/rabbitmq \! -user rabbitmq -exec chown rabbitmq '{}' +
            fi
            exec setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups "$0" "$@"
        fi ;;
esac

# If the long and short host names differ, use long names, as the official image does.
host=$(cat /proc/sys/kernel/hostname)
if [ -z "${RABBITMQ_USE_LONGNAME:-}" ] && [ "$host" != "${host%%.*}" ]; then
    export RABBITMQ_USE_LONGNAME=true
fi

if [ "$1" = rabbitmq-server ]; then
    shift
    # The real server script, not Debian's /usr/sbin/rabbitmq-server wrapper (which goes through su and,
    # as PID 1, ignores SIGTERM): it stops the node cleanly on SIGTERM in about a second.
    exec /usr/lib/rabbitmq/bin/rabbitmq-server "$@"
fi

exec "$@"
