#!/bin/sh
# cdk.json's app command: the CDK app on the project's venv, jsii on the Node.js pinned in
# package.json (so `npx cdk`, `node_modules/.bin/cdk` and a global `cdk` all behave the same).
cd "$(dirname "$0")/.." || exit 1
if [ ! -x .venv/bin/python ] || [ ! -x node_modules/.bin/node ]; then
  echo "error: the project is not set up here yet; run \`make synth\` first" >&2
  exit 1
fi
PATH="$PWD/node_modules/.bin:$PATH" exec .venv/bin/python app.py
