#!/usr/bin/env bash
# Installs the system packages the tests and benchmarks run for real, when missing.
set -euo pipefail

declare -A package_for=(
  [redis-server]=redis-server
  [redis-cli]=redis-tools
  [nginx]=nginx
  [wrk]=wrk
  [openssl]=openssl
  [taskset]=util-linux
)
missing=()
for command in "${!package_for[@]}"; do
  if ! command -v "$command" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$command" ]; then
    missing+=("${package_for[$command]}")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "error: missing ${missing[*]}; install them or run as root" >&2; exit 1; }
  sudo="sudo"
fi
echo "installing: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts the packaged services on install; the tests start their own on free ports.
for service in redis-server nginx; do
  $sudo systemctl disable --now "$service" >/dev/null 2>&1 || $sudo service "$service" stop >/dev/null 2>&1 || true
done
