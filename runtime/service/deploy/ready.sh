# shellcheck shell=bash
# wait_ready: until PROSTUDIO_READY_URL (default /health/ready through nginx) answers 200,
# for READY_SECONDS (default 120). Sourced by update.sh and redis-cutover.sh.
READY_URL="${PROSTUDIO_READY_URL:-http://127.0.0.1/health/ready}"
READY_SECONDS="${READY_SECONDS:-120}"

wait_ready() {
  local deadline=$((SECONDS + READY_SECONDS))
  while [ "$SECONDS" -lt "$deadline" ]; do
    curl -fsS -o /dev/null --max-time 2 "$READY_URL" && return 0
    sleep 1
  done
  echo "$READY_URL did not answer 200 within $READY_SECONDS s" >&2
  return 1
}
