#!/bin/sh
# Entry point of tcel-offline/rabbitmq, following the official rabbitmq image:
#   RABBITMQ_DEFAULT_USER / RABBITMQ_DEFAULT_PASS / RABBITMQ_DEFAULT_VHOST create that
#   user and vhost when the node first boots on an empty data directory; the guest
#   user is then never created. Without them Debian's default applies: guest/guest,
#   usable from loopback only.
#   Data lives in /var/lib/rabbitmq/mnesia/rabbit@<hostname>: give the container a
#   fixed --hostname. The server runs as the rabbitmq user.
set -eu

# `docker run IMAGE -foo` means `rabbitmq-server -foo`.
if [ "${1#-}" != "$1" ]; then
    set -- rabbitmq-server "$@"
fi

if [ "$1" != rabbitmq-server ]; then
    exec "$@"
fi
shift

conf_d=/etc/rabbitmq/conf.d
defaults="$conf_d/10-tcel-defaults.conf"
data=/var/lib/rabbitmq
cookie="$data/.erlang.cookie"

if [ "$(id -u)" = 0 ]; then
    mkdir -p "$conf_d" "$data"
    umask 027
    {
        echo "# Written by docker-entrypoint.sh from RABBITMQ_DEFAULT_* at container start."
        for var in RABBITMQ_DEFAULT_USER RABBITMQ_DEFAULT_PASS RABBITMQ_DEFAULT_VHOST; do
            eval "value=\${$var:-}"
            case "$value" in
                *'
'*) echo "docker-entrypoint.sh: $var must not contain a newline" >&2; exit 64 ;;
            esac
            if [ -n "$value" ]; then
                key=$(echo "$var" | sed 's/^RABBITMQ_//' | tr 'A-Z' 'a-z')
                printf '%s = %s\n' "$key" "$value"
            fi
        done
    } >"$defaults.tmp"
    chown root:rabbitmq "$defaults.tmp"
    chmod 640 "$defaults.tmp"
    mv "$defaults.tmp" "$defaults"
    umask 022

    if [ ! -s "$cookie" ]; then
        ( umask 077; tr -dc 'A-Za-z0-9' </dev/urandom | head -c 32 >"$cookie" )
    fi
    chmod 400 "$cookie"
    # A named volume or bind mount may come in owned by root.
    find "$data" \! -user rabbitmq -exec chown rabbitmq:rabbitmq '{}' +

    # Exec the real server script (not Debian's /usr/sbin wrapper, which runs it
    # through su and ignores SIGTERM as PID 1): it forwards SIGTERM to the Erlang
    # VM, which stops the node cleanly.
    exec setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups \
        /usr/lib/rabbitmq/bin/rabbitmq-server "$@"
fi

exec /usr/lib/rabbitmq/bin/rabbitmq-server "$@"
