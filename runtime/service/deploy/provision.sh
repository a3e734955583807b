#!/usr/bin/env bash
# Provisions the ProStudio box (Amazon Linux 2023) from the unpacked service asset.
# Run as root by cfn-init on a new box, and by deploy/update.sh (sent through SSM Run Command
# during the deploy) on every update: each step is idempotent, and runs are serialized.
#
# Environment:
#   PROSTUDIO_REDIS_MODE        local (Redis on this box) or external (ElastiCache)
#   PROSTUDIO_REDIS_SECRET_ARN  Secrets Manager secret: local requirepass / the ElastiCache
#                               service user's password (or the group's AUTH token)
#   REDIS_HOST, REDIS_PORT      external mode: the ElastiCache primary endpoint
#   REDIS_TLS                   external mode: true
#   REDIS_USERNAME              external mode: the ElastiCache user the service logs in as
#                               (empty for a group that keeps its AUTH token)
#   AWS_REGION, API_WORKERS, MAX_MEMORY_MB
set -euo pipefail

APP_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEPLOY_DIR="$APP_DIR/deploy"
# Files are written under ROOT (empty on the box; a scratch directory in the tests) while
# their contents name the box's real paths.
ROOT="${PROSTUDIO_ROOT:-}"
VENV=/opt/prostudio/venv
PYTHON="$ROOT$VENV/bin/python"
CONFIG_DIR=/etc/prostudio
SERVICE_USER=prostudio
REDIS_USER=prostudio-redis
LOCAL_REDIS_PORT=6379
LOCAL_REDIS_SOCKET=/run/prostudio-redis/redis.sock
TOOLS_DIR=/opt/prostudio/tools
LOCK_FILE=/run/prostudio-provision.lock

die() {
  echo "provision: $*" >&2
  exit 1
}

check_environment() {
  case "${PROSTUDIO_REDIS_MODE:-}" in
    local | external) ;;
    *) die "PROSTUDIO_REDIS_MODE='${PROSTUDIO_REDIS_MODE:-}' must be local or external" ;;
  esac
  [ -n "${PROSTUDIO_REDIS_SECRET_ARN:-}" ] || die "PROSTUDIO_REDIS_SECRET_ARN is not set"
  [ -n "${AWS_REGION:-}" ] || die "AWS_REGION is not set"
  [[ "${API_WORKERS:-}" =~ ^[0-9]+$ ]] || die "API_WORKERS='${API_WORKERS:-}' is not a number"
  [[ "${MAX_MEMORY_MB:-}" =~ ^[0-9]+$ ]] || die "MAX_MEMORY_MB='${MAX_MEMORY_MB:-}' is not a number"
  if [ "$PROSTUDIO_REDIS_MODE" = external ]; then
    [ -n "${REDIS_HOST:-}" ] || die "REDIS_HOST is required in external mode"
    [[ "${REDIS_PORT:-}" =~ ^[0-9]+$ ]] || die "REDIS_PORT='${REDIS_PORT:-}' is not a port"
    [ "${REDIS_TLS:-}" = true ] || die "REDIS_TLS must be true in external mode (ElastiCache)"
  fi
}

install_packages() {
  dnf install -y -q nginx redis6 python3.11 python3.11-pip
}

create_users() {
  id -u "$SERVICE_USER" >/dev/null 2>&1 ||
    useradd --system --user-group --home-dir /opt/prostudio --shell /sbin/nologin "$SERVICE_USER"
  id -u "$REDIS_USER" >/dev/null 2>&1 ||
    useradd --system --user-group --home-dir /var/lib/prostudio-redis --shell /sbin/nologin \
      "$REDIS_USER"
  # nginx's workers reach gunicorn's socket through the service's group, and the service
  # reaches Redis's socket through Redis's group.
  usermod --append --groups "$SERVICE_USER" nginx
  usermod --append --groups "$REDIS_USER" "$SERVICE_USER"
}

build_venv() {
  [ -x "$PYTHON" ] || python3.11 -m venv "$ROOT$VENV"
  "$ROOT$VENV/bin/pip" install --quiet --disable-pip-version-check --no-cache-dir \
    -r "$APP_DIR/requirements.txt"
  chmod -R a+rX "$APP_DIR" "$ROOT$VENV"
}

# Runs the shared renderer (the same code the tests and run-local use).
provisioning() {
  (cd "$APP_DIR" && "$PYTHON" -m prostudio.provisioning "$@")
}

fetch_secret() {
  aws secretsmanager get-secret-value --region "$AWS_REGION" \
    --secret-id "$PROSTUDIO_REDIS_SECRET_ARN" --query SecretString --output text
}

write_service_environment() {
  local secret="$1"
  install -d -m 0750 "$ROOT$CONFIG_DIR"
  chown root:"$SERVICE_USER" "$ROOT$CONFIG_DIR"
  if [ "$PROSTUDIO_REDIS_MODE" = local ]; then
    printf '%s' "$secret" | provisioning env-file "$ROOT$CONFIG_DIR/env" REDIS_PASSWORD \
      REDIS_HOST=127.0.0.1 REDIS_PORT="$LOCAL_REDIS_PORT" REDIS_SOCKET="$LOCAL_REDIS_SOCKET" \
      REDIS_TLS=false \
      API_WORKERS="$API_WORKERS" MAX_MEMORY_MB="$MAX_MEMORY_MB" LOG_LEVEL=info
  else
    printf '%s' "$secret" | provisioning env-file "$ROOT$CONFIG_DIR/env" REDIS_AUTH_TOKEN \
      REDIS_HOST="$REDIS_HOST" REDIS_PORT="$REDIS_PORT" REDIS_TLS=true \
      REDIS_USERNAME="${REDIS_USERNAME:-}" \
      API_WORKERS="$API_WORKERS" MAX_MEMORY_MB="$MAX_MEMORY_MB" LOG_LEVEL=info
  fi
  chown root:root "$ROOT$CONFIG_DIR/env"
  chmod 0600 "$ROOT$CONFIG_DIR/env"
  # Fail here, with the variable's name, rather than in a restart loop.
  (
    set -a
    # shellcheck disable=SC1090,SC1091
    . "$ROOT$CONFIG_DIR/env"
    set +a
    cd "$APP_DIR" && "$PYTHON" -m prostudio.check_config
  )
}

# The operator CLIs from the tools asset, as commands on the box's PATH.
install_tools() {
  [ -f "$ROOT$TOOLS_DIR/scripts/migrate_redis.py" ] || die "the tools asset is not at $TOOLS_DIR"
  "$ROOT$VENV/bin/pip" install --quiet --disable-pip-version-check --no-cache-dir \
    -r "$DEPLOY_DIR/tools-requirements.txt"
  chmod -R a+rX "$ROOT$TOOLS_DIR"
  install -d "$ROOT/usr/local/bin"
  printf '#!/bin/sh\nPYTHONPATH=%s:%s exec %s %s "$@"\n' "$TOOLS_DIR" "$TOOLS_DIR/runtime/redis_copy" \
    "$VENV/bin/python" "$TOOLS_DIR/scripts/migrate_redis.py" >"$ROOT/usr/local/bin/migrate_redis"
  chmod 0755 "$ROOT/usr/local/bin/migrate_redis"
}

# Boxes launched before checked updates ran cfn-hup, which re-ran cfn-init unchecked after
# every stack update. Updates now arrive only through SSM Run Command.
retire_cfn_hup() {
  rm -f "$ROOT/etc/cfn/hooks.d/cfn-auto-reloader.conf"
  if [ -f "$ROOT/etc/systemd/system/cfn-hup.service" ]; then
    systemctl disable --now cfn-hup.service >/dev/null 2>&1 || true
    rm -f "$ROOT/etc/systemd/system/cfn-hup.service"
  fi
}

# The box's primary private IPv4 address, from the instance metadata service (IMDSv2): where
# the deploy-time follow and the migration clients reach this box's Redis.
private_address() {
  local token address
  token="$(curl -fsS -m 2 -X PUT http://169.254.169.254/latest/api/token \
    -H 'X-aws-ec2-metadata-token-ttl-seconds: 60')" || return 1
  address="$(curl -fsS -m 2 -H "X-aws-ec2-metadata-token: $token" \
    http://169.254.169.254/latest/meta-data/local-ipv4)" || return 1
  [[ "$address" =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]] || return 1
  echo "$address"
}

redis_server_binary() {
  command -v redis6-server || command -v redis-server || die "no redis-server binary found"
}

configure_local_redis() {
  local secret="$1" maxmemory address
  address="$(private_address)" || die "could not read this box's private address from the instance metadata"
  maxmemory="$(provisioning redis-maxmemory "$MAX_MEMORY_MB")"
  printf '%s' "$secret" | provisioning redis-auth "$ROOT$CONFIG_DIR/redis-auth.conf"
  provisioning render --mode 0640 "$DEPLOY_DIR/redis.conf" "$ROOT$CONFIG_DIR/redis.conf" \
    BIND="127.0.0.1 $address" PORT="$LOCAL_REDIS_PORT" UNIX_SOCKET="$LOCAL_REDIS_SOCKET" \
    DATA_DIR=/var/lib/prostudio-redis \
    MAXMEMORY_MB="$maxmemory" AUTH_INCLUDE="$CONFIG_DIR/redis-auth.conf"
  chown root:"$REDIS_USER" "$ROOT$CONFIG_DIR/redis.conf" "$ROOT$CONFIG_DIR/redis-auth.conf"
  chmod 0640 "$ROOT$CONFIG_DIR/redis.conf" "$ROOT$CONFIG_DIR/redis-auth.conf"
  # The redis user must traverse the config directory.
  chmod 0751 "$ROOT$CONFIG_DIR"
  provisioning render "$DEPLOY_DIR/prostudio-redis.service" \
    "$ROOT/etc/systemd/system/prostudio-redis.service" REDIS_SERVER="$(redis_server_binary)"
}

configure_nginx() {
  install -D -m 0644 "$DEPLOY_DIR/proxy_params.conf" "$ROOT/etc/nginx/prostudio-proxy.conf"
  provisioning render "$DEPLOY_DIR/nginx.conf" "$ROOT/etc/nginx/conf.d/prostudio.conf" \
    LISTEN=80 SOCKET=/run/prostudio-api/gunicorn.sock STATIC_ROOT="$APP_DIR/static" \
    ACCESS_LOG=/var/log/nginx/prostudio.access.log PROXY_PARAMS=/etc/nginx/prostudio-proxy.conf
  provisioning render "$DEPLOY_DIR/nginx-main.conf" "$ROOT/etc/nginx/nginx.conf" \
    USER=nginx WORKER_PROCESSES=auto PID_FILE=/run/nginx.pid \
    ERROR_LOG=/var/log/nginx/error.log TEMP_DIR=/var/lib/nginx/tmp \
    SITE_CONF=/etc/nginx/conf.d/prostudio.conf
  install -D -m 0644 "$DEPLOY_DIR/nginx-override.conf" \
    "$ROOT/etc/systemd/system/nginx.service.d/prostudio.conf"
  nginx -t -q
}

start_services() {
  install -D -m 0644 "$DEPLOY_DIR/prostudio.socket" "$ROOT/etc/systemd/system/prostudio.socket"
  install -D -m 0644 "$DEPLOY_DIR/prostudio.service" "$ROOT/etc/systemd/system/prostudio.service"
  systemctl daemon-reload
  # The distribution's own Redis unit never runs: ours uses the rendered configuration.
  systemctl disable --now redis6.service >/dev/null 2>&1 || true
  if [ "$PROSTUDIO_REDIS_MODE" = local ]; then
    systemctl enable prostudio-redis.service
    systemctl restart prostudio-redis.service
  else
    systemctl disable --now prostudio-redis.service >/dev/null 2>&1 || true
  fi
  systemctl enable --now prostudio.socket
  systemctl enable prostudio.service nginx.service
  systemctl restart prostudio.service
  systemctl reload-or-restart nginx.service
}

main() {
  check_environment
  [ "$(id -u)" -eq 0 ] || die "run as root"
  mkdir -p "$(dirname "$ROOT$LOCK_FILE")"
  exec 9>"$ROOT$LOCK_FILE"
  flock 9
  retire_cfn_hup
  install_packages
  create_users
  build_venv
  install_tools
  local secret
  secret="$(fetch_secret)" || die "could not read secret $PROSTUDIO_REDIS_SECRET_ARN"
  [ -n "$secret" ] || die "secret $PROSTUDIO_REDIS_SECRET_ARN is empty"
  write_service_environment "$secret"
  if [ "$PROSTUDIO_REDIS_MODE" = local ]; then
    configure_local_redis "$secret"
  fi
  configure_nginx
  start_services
  echo "provision: ProStudio configured (redis: $PROSTUDIO_REDIS_MODE)"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  main "$@"
fi
