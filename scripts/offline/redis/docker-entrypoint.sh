#!/bin/sh
# Entry point of tcel-offline/redis, following the official redis image:
#   `docker run IMAGE redis-server [--option value ...]` (or just options, or a
#   config file first) runs Redis as the redis user in /data, listening on 6379 on
#   all interfaces. Debian's /etc/redis/redis.conf (bound to 127.0.0.1) is not used.
#   Like the official image, protected mode is off unless the arguments turn it on:
#   the container only listens where its port is published.
set -eu

if [ $# -eq 0 ]; then
    set -- redis-server
fi

# `docker run IMAGE --requirepass x` or `docker run IMAGE /path/redis.conf`.
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
    set -- redis-server "$@"
fi

if [ "$1" = redis-server ]; then
    if [ "$(id -u)" = 0 ]; then
        find . \! -user redis -exec chown redis '{}' +
        exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
    fi
    shift
    # Without a config file Redis 7 binds every interface; put our default first so
    # that a later --protected-mode in the arguments wins. A config file (or config
    # on stdin, "-") decides for itself; --version and friends must stay first.
    case "${1:-}" in
        ''|--?*)
            case "${1:-}" in
                --version|--help|--test-memory|--check-system) ;;
                *) set -- --protected-mode no "$@" ;;
            esac ;;
    esac
    # Data files readable by the redis user only, as in the official image.
    if [ "$(umask)" = 0022 ]; then
        umask 0077
    fi
    exec redis-server "$@"
fi

exec "$@"
