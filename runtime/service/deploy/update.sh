#!/usr/bin/env bash
# Applies a new release to a running box, checked: sent by the deploy through SSM Run Command
# (infra/constructs/box_update.py) from the NEW release, one box at a time.
#
#   update.sh APP_STAGE TOOLS_STAGE
#
# Moves the unpacked service and tools assets into place (keeping the running release as
# *.previous), provisions, and waits for /health/ready. When either fails it puts the
# previous release back, provisions it, and exits 1, so the deploy fails with this box
# serving the version it had. The box, its local Redis and its address are kept.
#
# Environment: provision.sh's variables, plus
#   PROSTUDIO_READY_URL   default http://127.0.0.1/health/ready (through nginx)
#   READY_SECONDS         how long to wait for it, default 120
set -euo pipefail

ROOT="${PROSTUDIO_ROOT:-}"
BASE="$ROOT/opt/prostudio"
# shellcheck source=SCRIPTDIR/ready.sh
. "$(dirname "${BASH_SOURCE[0]}")/ready.sh"

say() { echo "update: $*" >&2; }

swap_in() {
  local name="$1" stage="$2"
  rm -rf "$BASE/$name.previous"
  if [ -d "$BASE/$name" ]; then mv "$BASE/$name" "$BASE/$name.previous"; fi
  mv "$stage" "$BASE/$name"
}

restore_previous() {
  local name
  for name in app tools; do
    if [ -d "$BASE/$name.previous" ]; then
      rm -rf "$BASE/$name.failed"
      mv "$BASE/$name" "$BASE/$name.failed"
      mv "$BASE/$name.previous" "$BASE/$name"
    fi
  done
}

provision_and_check() {
  bash "$BASE/app/deploy/provision.sh" && wait_ready
}

main() {
  [ "$#" -eq 2 ] || { say "usage: update.sh APP_STAGE TOOLS_STAGE"; exit 2; }
  [ -f "$1/deploy/provision.sh" ] || { say "$1 is not an unpacked service asset"; exit 2; }
  [ -f "$2/scripts/migrate_redis.py" ] || { say "$2 is not an unpacked tools asset"; exit 2; }
  swap_in app "$1"
  swap_in tools "$2"
  if provision_and_check; then
    echo "update: release applied and ready"
    return 0
  fi
  if [ ! -d "$BASE/app.previous" ]; then
    say "the new release failed and there is no previous release to restore"
    exit 1
  fi
  say "the new release failed; restoring the previous release"
  restore_previous
  if provision_and_check; then
    say "previous release restored and ready"
  else
    say "the previous release did not come back either; the box needs attention"
  fi
  exit 1
}

main "$@"
