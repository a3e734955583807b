#!/usr/bin/env node
// `npx cdk ...` runs this (package.json's "bin"): npx prefers the project's own bin to
// node_modules/.bin, so before `make synth` it prints one hint instead of offering to install
// an unpinned CDK CLI. After it, it runs the pinned CLI on the pinned Node.js. `cdk diff`
// without AWS credentials says its error once and names the offline `make diff`.
"use strict";

const { spawn } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");
const readline = require("node:readline");

const root = path.resolve(__dirname, "..");
const bin = path.join(root, "node_modules", ".bin");
const cli = path.join(bin, "cdk");
const NO_ACCOUNT = "Unable to resolve AWS account to use";

if (!fs.existsSync(cli) || !fs.existsSync(path.join(root, ".venv", "bin", "python"))) {
  console.error("error: the project is not set up here yet; run `make synth` first");
  process.exit(1);
}

const args = process.argv.slice(2);
const diff = args[0] === "diff";
const env = { ...process.env, PATH: `${bin}${path.delimiter}${process.env.PATH || ""}` };
if (diff && process.stderr.isTTY && !("FORCE_COLOR" in env)) {
  env.FORCE_COLOR = "1";
}
const child = spawn(cli, args, { env, stdio: ["inherit", "inherit", diff ? "pipe" : "inherit"] });

let noAccount = false;
if (diff) {
  let previous = "";
  readline.createInterface({ input: child.stderr, crlfDelay: Infinity }).on("line", (line) => {
    const repeated = line === previous && line.includes(NO_ACCOUNT);
    noAccount = noAccount || line.includes(NO_ACCOUNT);
    previous = line;
    if (!repeated) {
      process.stderr.write(`${line}\n`);
    }
  });
}

// Ctrl-C reaches the whole process group: the CLI handles it, this waits for its exit.
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(signal, () => child.kill(signal));
}
child.on("close", (code, signal) => {
  if (noAccount) {
    console.error(
      "hint: `npx cdk diff` compares with the deployed stacks and needs AWS credentials;" +
        ' `make diff FROM="-c phase=1" TO="-c phase=2"` compares two flag sets offline',
    );
  }
  if (signal) {
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
  }
  process.exit(code === null ? 1 : code);
});
