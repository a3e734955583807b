#!/usr/bin/env bash
# The box side of the deploy-time Redis cutover (infra/constructs/redis_cutover.py), each
# subcommand sent to one box through SSM Run Command and checked by its exit status.
#
#   follow-start forward|reverse   start `migrate_redis --follow` as the transient unit
#                                  prostudio-follow: forward copies old -> new (first
#                                  checking the old Redis could take production's data
#                                  back), reverse new -> old (only on a box already switched)
#   follow-wait                    wait until the follow reports "following", then check
#                                  again, with production's data in place, that the old
#                                  Redis could take it back (engine, version, memory); a
#                                  follow that stopped (a source that restarted or lost its
#                                  keys is never mirrored) fails the step with its reason
#   follow-stop                    SIGTERM it: it drains, verifies both ways and exits; print
#                                  its final JSON summary and exit with its status
#   switch-to-new                  point gunicorn at the new Redis, wait for /health/ready;
#                                  a box that cannot use it goes back to its own Redis, exit 1
#   switch-to-old                  drop the override, back to the box's own Redis
#
# Environment: AWS_REGION; OLD_HOST OLD_PORT OLD_TLS OLD_SECRET_ARN OLD_USER and NEW_HOST
# NEW_PORT NEW_TLS NEW_SECRET_ARN NEW_USER (the two Redis servers, and the ElastiCache user the
# follow logs in as with its Secrets Manager secret; an empty user is the default user of a
# group's AUTH token or the box's requirepass); NEW_SERVICE_USER NEW_SERVICE_SECRET_ARN (the
# switched service's login on the new Redis; the follow's when unset), and
# NEW_TLS_CA_FILE for a new Redis whose certificate the system does not trust;
# PROSTUDIO_READY_URL, READY_SECONDS, FOLLOW_WAIT_SECONDS, FOLLOW_STOP_SECONDS.
set -euo pipefail

ROOT="${PROSTUDIO_ROOT:-}"
APP_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="$ROOT/opt/prostudio/venv/bin/python"
CONFIG_DIR=/etc/prostudio
SWITCH_ENV="$CONFIG_DIR/redis-switch.env"
DROP_IN=/etc/systemd/system/prostudio.service.d/redis-switch.conf
STATE_DIR="$ROOT/var/lib/prostudio/cutover"
UNIT=prostudio-follow
# shellcheck source=SCRIPTDIR/ready.sh
. "$(dirname "${BASH_SOURCE[0]}")/ready.sh"

say() { echo "redis-cutover: $*" >&2; }
die() {
  say "$*"
  exit 1
}

# A secret's value on stdout. Call it as `x="$(secret_of ARN)" || die ...`: inside another
# command's arguments a failed read would not stop the script.
secret_of() {
  local value
  value="$(aws secretsmanager get-secret-value --region "$AWS_REGION" --secret-id "$1" \
    --query SecretString --output text)" || return 1
  [ -n "$value" ] || return 1
  printf '%s' "$value"
}

url_of() { # host port tls
  local scheme=redis
  [ "$3" = true ] && scheme=rediss
  printf '%s://%s:%s/0' "$scheme" "$1" "$2"
}

is_switched() { [ -f "$ROOT$DROP_IN" ]; }

# The switched service's login on the new Redis (documents sent before per-client users
# carry only the follow's, which was then the group's AUTH token).
service_secret_arn() { printf '%s' "${NEW_SERVICE_SECRET_ARN:-$NEW_SECRET_ARN}"; }
service_user() { printf '%s' "${NEW_SERVICE_USER:-${NEW_USER:-}}"; }

# PING the new Redis with the service's login, as the service would connect (TLS, its user),
# 5 s at most.
probe_new() {
  REDIS_PROBE_PASSWORD="$1" REDIS_PROBE_USER="$(service_user)" "$PYTHON" - "$NEW_HOST" \
    "$NEW_PORT" "$NEW_TLS" <<'PY'
import os, sys
import redis
host, port, tls = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "true"
ca = {"ssl_ca_certs": os.environ["NEW_TLS_CA_FILE"]} if os.environ.get("NEW_TLS_CA_FILE") else {}
try:
    redis.Redis(host=host, port=port, ssl=tls, password=os.environ["REDIS_PROBE_PASSWORD"],
                username=os.environ["REDIS_PROBE_USER"] or None,
                socket_connect_timeout=5, socket_timeout=5, **ca).ping()
except redis.RedisError as error:
    sys.exit(f"redis-cutover: cannot use {host}:{port}: {error}")
PY
}

restart_service() {
  systemctl daemon-reload
  systemctl restart prostudio.service
}

switch_to_old() {
  if ! is_switched; then
    echo "redis-cutover: already on the box's own Redis"
    return 0
  fi
  rm -f "$ROOT$DROP_IN" "$ROOT$SWITCH_ENV"
  restart_service
  wait_ready || die "the box's own Redis did not make the service ready"
  echo "redis-cutover: back on the box's own Redis"
}

switch_to_new() {
  local token secret_arn
  secret_arn="$(service_secret_arn)"
  token="$(secret_of "$secret_arn")" || die "could not read $secret_arn"
  probe_new "$token" || exit 1
  # Empty values unset what the base environment says about the box's own Redis.
  printf '%s' "$token" | (cd "$APP_DIR" && "$PYTHON" -m prostudio.provisioning env-file \
    "$ROOT$SWITCH_ENV" REDIS_AUTH_TOKEN REDIS_HOST="$NEW_HOST" REDIS_PORT="$NEW_PORT" \
    REDIS_TLS="$NEW_TLS" REDIS_USERNAME="$(service_user)" REDIS_SOCKET= REDIS_PASSWORD= \
    REDIS_TLS_CA_FILE="${NEW_TLS_CA_FILE:-}")
  install -D -m 0644 /dev/null "$ROOT$DROP_IN"
  printf '[Service]\nEnvironmentFile=%s\n' "$SWITCH_ENV" >"$ROOT$DROP_IN"
  restart_service
  if wait_ready; then
    echo "redis-cutover: serving from $NEW_HOST:$NEW_PORT"
    return 0
  fi
  say "the service is not ready on $NEW_HOST:$NEW_PORT; going back to the box's own Redis"
  switch_to_old
  exit 1
}

# Could the old Redis take production's data back (the revert's copy)? migrate_redis
# --preflight checks engine, version and memory, writes nothing, and says why not in one line.
preflight_revert() {
  local ca=() source_password target_password
  [ -n "${NEW_TLS_CA_FILE:-}" ] && ca=(--source-ca "$NEW_TLS_CA_FILE")
  source_password="$(secret_of "$NEW_SECRET_ARN")" || die "could not read $NEW_SECRET_ARN"
  target_password="$(secret_of "$OLD_SECRET_ARN")" || die "could not read $OLD_SECRET_ARN"
  SOURCE_REDIS_PASSWORD="$source_password" TARGET_REDIS_PASSWORD="$target_password" \
    SOURCE_REDIS_USERNAME="${NEW_USER:-}" TARGET_REDIS_USERNAME="${OLD_USER:-}" \
    "$ROOT/usr/local/bin/migrate_redis" --preflight --policy replace "${ca[@]}" \
    --source "$(url_of "$NEW_HOST" "$NEW_PORT" "$NEW_TLS")" \
    --target "$(url_of "$OLD_HOST" "$OLD_PORT" "$OLD_TLS")" >/dev/null ||
    die "the old Redis could not take production's data back if this deploy were reverted; no box has switched"
}

follow_start() {
  local direction="$1" source target source_secret target_secret source_password
  local target_password source_user target_user policy=()
  install -d -m 0700 "$STATE_DIR"
  case "$direction" in
    forward)
      if is_switched; then
        echo skipped >"$STATE_DIR/state"
        echo "redis-cutover: this box already uses the new Redis; nothing to copy"
        return 0
      fi
      preflight_revert
      source="$(url_of "$OLD_HOST" "$OLD_PORT" "$OLD_TLS")" source_secret="$OLD_SECRET_ARN"
      target="$(url_of "$NEW_HOST" "$NEW_PORT" "$NEW_TLS")" target_secret="$NEW_SECRET_ARN"
      source_user="${OLD_USER:-}" target_user="${NEW_USER:-}"
      ;;
    reverse)
      if ! is_switched; then
        echo skipped >"$STATE_DIR/state"
        echo "redis-cutover: this box never switched; its own Redis has every write"
        return 0
      fi
      source="$(url_of "$NEW_HOST" "$NEW_PORT" "$NEW_TLS")" source_secret="$NEW_SECRET_ARN"
      target="$(url_of "$OLD_HOST" "$OLD_PORT" "$OLD_TLS")" target_secret="$OLD_SECRET_ARN"
      source_user="${NEW_USER:-}" target_user="${OLD_USER:-}"
      # The old Redis still holds its own keys: production's replace them.
      policy=(--policy replace)
      ;;
    *) die "follow-start forward|reverse, not '$direction'" ;;
  esac
  source_password="$(secret_of "$source_secret")" || die "could not read $source_secret"
  target_password="$(secret_of "$target_secret")" || die "could not read $target_secret"
  systemctl stop "$UNIT" >/dev/null 2>&1 || true
  systemctl reset-failed "$UNIT" >/dev/null 2>&1 || true
  (
    umask 077
    printf 'SOURCE_REDIS_PASSWORD=%s\nTARGET_REDIS_PASSWORD=%s\n' \
      "$source_password" "$target_password" >"$STATE_DIR/follow.env"
    printf 'SOURCE_REDIS_USERNAME=%s\nTARGET_REDIS_USERNAME=%s\n' \
      "$source_user" "$target_user" >>"$STATE_DIR/follow.env"
  )
  rm -f "$STATE_DIR/follow.jsonl" "$STATE_DIR/follow.err"
  systemd-run --unit="$UNIT" --description="ProStudio Redis follow ($direction)" \
    --property=RemainAfterExit=yes --property=TimeoutStopSec=900 \
    --property=EnvironmentFile="$STATE_DIR/follow.env" \
    --property=Environment=PROSTUDIO_STATE_DIR="$STATE_DIR" \
    --property=StandardOutput="file:$STATE_DIR/follow.jsonl" \
    --property=StandardError="file:$STATE_DIR/follow.err" \
    /usr/local/bin/migrate_redis --source "$source" --target "$target" "${policy[@]}" --follow
  echo running >"$STATE_DIR/state"
  echo "$direction" >"$STATE_DIR/direction"
  echo "redis-cutover: follow $direction started"
}

last_state() {
  tail -n 1 "$STATE_DIR/follow.jsonl" 2>/dev/null |
    python3 -c 'import json,sys; print(json.loads(sys.stdin.read() or "{}").get("state", ""))' \
      2>/dev/null || true
}

follow_wait() {
  [ "$(cat "$STATE_DIR/state" 2>/dev/null)" = skipped ] && return 0
  local deadline=$((SECONDS + ${FOLLOW_WAIT_SECONDS:-1200}))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if [ "$(systemctl show -p SubState --value "$UNIT")" != running ]; then
      grep '^error:' "$STATE_DIR/follow.err" >&2 || tail -n 5 "$STATE_DIR/follow.err" >&2 || true
      die "the follow exited before it caught up; no box has switched"
    fi
    if [ "$(last_state)" = following ]; then
      tail -n 1 "$STATE_DIR/follow.jsonl"
      [ "$(cat "$STATE_DIR/direction" 2>/dev/null)" = forward ] && preflight_revert
      return 0
    fi
    sleep 2
  done
  die "the follow did not catch up within ${FOLLOW_WAIT_SECONDS:-1200} s"
}

follow_stop() {
  if [ "$(cat "$STATE_DIR/state" 2>/dev/null)" = skipped ]; then
    rm -f "$STATE_DIR/state"
    echo '{"state": "done", "skipped": true}'
    return 0
  fi
  systemctl kill --signal=SIGTERM "$UNIT"
  local deadline=$((SECONDS + ${FOLLOW_STOP_SECONDS:-900})) sub status
  while [ "$SECONDS" -lt "$deadline" ]; do
    sub="$(systemctl show -p SubState --value "$UNIT")"
    [ "$sub" = running ] || break
    sleep 2
  done
  [ "$sub" != running ] || die "the follow did not finish draining within ${FOLLOW_STOP_SECONDS:-900} s"
  status="$(systemctl show -p ExecMainStatus --value "$UNIT")"
  systemctl stop "$UNIT" >/dev/null 2>&1 || true
  systemctl reset-failed "$UNIT" >/dev/null 2>&1 || true
  rm -f "$STATE_DIR/follow.env" "$STATE_DIR/state"
  tail -n 1 "$STATE_DIR/follow.jsonl"
  if [ "$status" != 0 ]; then
    grep '^error:' "$STATE_DIR/follow.err" >&2 || true
    die "the follow exited with $status: the two Redis servers differ"
  fi
}

main() {
  case "${1:-}" in
    follow-start) follow_start "${2:-}" ;;
    follow-wait) follow_wait ;;
    follow-stop) follow_stop ;;
    switch-to-new) switch_to_new ;;
    switch-to-old) switch_to_old ;;
    *) die "usage: redis-cutover.sh follow-start forward|reverse | follow-wait | follow-stop | switch-to-new | switch-to-old" ;;
  esac
}

main "$@"
