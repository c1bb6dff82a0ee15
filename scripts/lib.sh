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
  # compat mode: a plain path entry instead of an import hook, which costs every start-up 10 ms
  "$PY" -m pip install --quiet -c "$ROOT/constraints.txt" -e "$ROOT[test]" --config-settings editable_mode=compat \
    || die "pip install failed"
  echo "$want" > "$stamp"
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
  pgrep -x dockerd >/dev/null || (setsid dockerd >/var/log/tcel-dockerd.log 2>&1 &)
  for _ in $(seq 60); do engine_answers && return; sleep 0.5; done
  die "dockerd did not answer within 30 s: see /var/log/tcel-dockerd.log"
}

# The broker, backend and Python base images tcel is configured to use; stand-ins when no registry answers.
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
for key in ("TCEL_BROKER_IMAGE", "TCEL_BACKEND_IMAGE", "TCEL_PYTHON_IMAGE"):
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

setup_all() {
  ensure_venv
  ensure_docker
  ensure_images
}
