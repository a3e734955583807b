#!/usr/bin/env bash
# Markdown for a pull request: each stack's template diff and the cost delta between two
# synthesized cloud assemblies, offline (no AWS credentials).
# Usage: scripts/assembly_diff.sh TITLE FROM_ASSEMBLY TO_ASSEMBLY
set -euo pipefail
title=$1 from=$2 to=$3
root=$(cd "$(dirname "$0")/.." && pwd)
cdk=$root/node_modules/.bin/cdk
export PATH=$root/node_modules/.bin:$PATH
# cdk diff sizes its tables from COLUMNS when stdout is not a terminal (unbounded without it).
export COLUMNS=100

echo "## $title"
echo
echo '```'
"$root/.venv/bin/python" "$root/scripts/cost.py" --compare "$from" "$to" | sed '$d'
echo '```'
for template in "$to"/*.template.json; do
  stack=$(basename "$template" .template.json)
  echo
  echo "### $stack"
  echo
  echo '```'
  if [ -f "$from/$stack.template.json" ]; then
    "$cdk" diff --no-notices --exclusively --app "$to" --template "$from/$stack.template.json" "$stack" 2>&1 || true
  else
    echo "new stack: $stack"
  fi
  echo '```'
done
