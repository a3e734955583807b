#!/usr/bin/env bash
# Keep the newest KEEP run folders of DIR (named by their UTC start time), remove the others.
# Usage: scripts/prune_runs.sh DIR KEEP
set -euo pipefail
dir=$1 keep=$2
if ! [[ $keep =~ ^[0-9]+$ ]]; then
  echo "error: keep ${keep} runs? use a whole number >= 0" >&2
  exit 2
fi
[ -d "$dir" ] || exit 0
mapfile -t runs < <(find "$dir" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort)
for (( i = 0; i < ${#runs[@]} - keep; i++ )); do
  rm -rf -- "${dir:?}/${runs[i]:?}"
done
