# Shared set-up for scripts/demo, scripts/test and scripts/bench: every step is idempotent.
# Sourced, not run. Everything it installs, it installs from nothing on a fresh machine.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.venv"
PY="$VENV/bin/python"

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# A virtualenv with tcel and its test tools, reinstalled when pyproject.toml or constraints.txt changes.
# constraints.txt pins Celery and what it pulls in to the versions the worker image installs.
ensure_venv() {
  local stamp="$VENV/.tcel-installed" want
  want=$(cat "$ROOT/pyproject.toml" "$ROOT/constraints.txt" | sha256sum | cut -d' ' -f1)
  if [ -x "$PY" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then return; fi
  say "installing tcel into $VENV"
  [ -x "$PY" ] || python3 -m venv "$VENV" || die "cannot create $VENV (is python3-venv installed?)"
  "$PY" -m pip install --quiet --upgrade pip >/dev/null 2>&1 || true
  # pip's output (also the warnings a machine's pip configuration causes) goes to a log, shown when it fails
  local log="$VENV/tcel-install.log"
  if ! "$PY" -m pip install --quiet -c "$ROOT/constraints.txt" -e "$ROOT[test]" >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    die "pip install failed (whole output: $log)"
  fi
  echo "$want" > "$stamp"
}

# In a subshell about to start a process that outlives the caller (an engine): close every file but stdin, stdout
# and stderr, so that it keeps none of the caller's. A lock held by whoever runs us (`flock /tmp/tcel-engine.lock
# scripts/test`) would otherwise be held by the engine for as long as it runs, and every later `flock` would wait.
close_inherited_files() {
  local fd
  for fd in /proc/"$BASHPID"/fd/*; do
    fd=${fd##*/}
    if [ "$fd" -gt 2 ]; then eval "exec $fd>&-"; fi
  done
}

engine_answers() { "$PY" -c 'import docker; docker.from_env(timeout=5).ping()' >/dev/null 2>&1; }

# A Docker engine that answers. On Debian, as root, with none running: install docker.io and start dockerd.
ensure_docker() {
  engine_answers && return
  [ -n "${DOCKER_HOST:-}" ] && die "no Docker engine answers at DOCKER_HOST=$DOCKER_HOST"
  if [ "$(id -u)" != 0 ] || [ ! -f /etc/debian_version ]; then
    die "no Docker engine answers at /var/run/docker.sock: start Docker, or set DOCKER_HOST"
  fi
  if ! command -v dockerd >/dev/null; then
    say "installing Debian's docker.io"
    apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io >/dev/null \
      || die "apt-get install docker.io failed"
  fi
  say "starting dockerd (log: /var/log/tcel-dockerd.log)"
  [ -f /var/run/docker.pid ] && ! pgrep -x dockerd >/dev/null && rm -f /var/run/docker.pid
  pgrep -x dockerd >/dev/null || (close_inherited_files; setsid dockerd </dev/null >/var/log/tcel-dockerd.log 2>&1 &)
  for _ in $(seq 60); do engine_answers && return; sleep 0.5; done
  die "dockerd did not answer within 30 s: see /var/log/tcel-dockerd.log"
}

# The broker, backend, Python base and registry (for up --swarm) images tcel is configured to use; stand-ins
# when no registry answers.
# A stand-in name that scripts/offline-images no longer builds (tcel-offline/rabbitmq:3 from an older
# version of it, say) in the user's config counts as missing, so the machine moves to the current stand-ins
# even while the old images still exist. Names set in the environment are the user's choice and stay.
ensure_images() {
  local missing
  missing=$("$PY" - "$("$ROOT/scripts/offline-images" --names)" <<'PY'
import os
import sys

import docker
from celery_cli.settings import setting

current = dict(line.split("=", 1) for line in sys.argv[1].split())
client = docker.from_env()
for key in ("TCEL_BROKER_IMAGE", "TCEL_BACKEND_IMAGE", "TCEL_PYTHON_IMAGE", "TCEL_REGISTRY_IMAGE"):
    name = setting(key)
    if key not in os.environ and name.startswith("tcel-offline/") and name != current[key]:
        print(f"{name} (replaced by {current[key]})")
        continue
    try:
        client.images.get(name)
    except docker.errors.ImageNotFound:
        try:
            client.images.pull(name)
        except docker.errors.APIError:
            print(name)
PY
)
  [ -z "$missing" ] && return
  say "not available or outdated: $(echo $missing); running scripts/offline-images (stand-ins from Debian packages)"
  "$ROOT/scripts/offline-images" || die "scripts/offline-images failed"
}

# Docker Compose v2 (`docker compose`), which docker-compose.yml and its test use. On Debian, as root,
# without it: the plugin binary from Debian 13's docker-compose package on this machine's own mirror (a Go
# binary linked only against libc, so it runs on Debian 12 too). apt fetches and verifies it through a
# private source list; the machine's apt configuration is left as it was.
ensure_compose() {
  docker compose version >/dev/null 2>&1 && return
  if [ "$(id -u)" != 0 ] || [ ! -f /etc/debian_version ]; then
    say "docker compose (v2) is missing: install the Compose plugin; tests/integration/test_compose.py needs it"
    return
  fi
  local mirror work plugin=usr/libexec/docker/cli-plugins/docker-compose
  # shellcheck source=debian-mirror.sh
  mirror=$(source "$ROOT/scripts/debian-mirror.sh" && debian_mirror)
  [ -n "$mirror" ] || die "no Debian mirror in /etc/apt/sources.list{,.d} to fetch Compose v2 from"
  say "installing Docker Compose v2 from Debian 13's docker-compose package ($mirror)"
  work=$(mktemp -d)
  mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
  local keyring=/usr/share/keyrings/debian-archive-keyring.gpg signed=
  [ -r "$keyring" ] && signed="[signed-by=$keyring] "
  echo "deb $signed$mirror trixie main" >"$work/sources.list"
  local -a apt=(-q -o Dir::Etc::SourceList="$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o Dir::State::Lists="$work/lists" -o Dir::Cache="$work/cache" -o APT::Sandbox::User=root)
  if ! { apt-get "${apt[@]}" update >"$work/apt.log" 2>&1 &&
         (cd "$work" && apt-get "${apt[@]}" download docker-compose >>"$work/apt.log" 2>&1) &&
         dpkg-deb --fsys-tarfile "$work"/docker-compose_*.deb | tar -x -C "$work" "./$plugin" &&
         install -D -m 0755 "$work/$plugin" "/$plugin"; }; then
    tail -n 5 "$work/apt.log" >&2
    rm -rf "$work"
    die "installing Docker Compose v2 failed"
  fi
  rm -rf "$work"
  docker compose version >/dev/null 2>&1 || die "docker compose does not run after installing /$plugin"
}

# Debian's chromium and its chromedriver: tests/integration/test_flower.py logs in to Flower with a real
# browser. On Debian, as root, without them: apt-get install them from the machine's own mirror. Only
# scripts/test needs them (scripts/demo does not install a browser).
ensure_chromium() {
  command -v chromium >/dev/null && command -v chromedriver >/dev/null && return
  if [ "$(id -u)" != 0 ] || [ ! -f /etc/debian_version ]; then
    say "chromium and chromedriver are missing: tests/integration/test_flower.py's browser test needs them"
    return
  fi
  say "installing Debian's chromium and chromium-driver (headless browser for the Flower test)"
  apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null \
    || die "apt-get install chromium chromium-driver failed"
}

# Debian's prometheus package (the server and promtool): tests/unit/test_alerts.py checks docs/alerts.yml with
# `promtool test rules`, and tests/integration/test_metrics.py has a real Prometheus scrape the exporter. On
# Debian, as root, without them: apt-get install it from the machine's own mirror. Only scripts/test needs it.
ensure_prometheus() {
  command -v prometheus >/dev/null && command -v promtool >/dev/null && return
  if [ "$(id -u)" != 0 ] || [ ! -f /etc/debian_version ]; then
    say "prometheus and promtool are missing: the alert rules' and the exporter's tests need them"
    return
  fi
  say "installing Debian's prometheus (promtool and a server for the metrics tests)"
  apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q prometheus >/dev/null \
    || die "apt-get install prometheus failed"
}

setup_all() {
  ensure_venv
  ensure_docker
  ensure_compose
  ensure_images
}
