#!/usr/bin/env bash
# Offline diff between two flag settings: synthesizes both, then `cdk diff --template`.
# Usage: scripts/flag_diff.sh STACK "FROM flags" "TO flags"
set -euo pipefail
stack=$1 from=$2 to=$3
cdk=node_modules/.bin/cdk
# cdk diff sizes its tables from COLUMNS when stdout is not a terminal (unbounded without it).
export COLUMNS=100
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# shellcheck disable=SC2086  # flag strings are word-split on purpose: "-c a=1 -c b=2"
"$cdk" synth --no-notices --quiet -o "$out/from" $from >/dev/null
# shellcheck disable=SC2086
"$cdk" synth --no-notices --quiet -o "$out/to" $to >/dev/null
echo "$stack: $from  ->  $to"
"$cdk" diff --no-notices --exclusively --app "$out/to" --template "$out/from/$stack.template.json" "$stack"
.venv/bin/python scripts/cost.py --compare "$out/from" "$out/to" | sed '$d'
