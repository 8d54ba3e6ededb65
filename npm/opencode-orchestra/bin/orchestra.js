#!/usr/bin/env node
// The `orchestra` command of the npm package: finds the native binary for this platform (the
// optional dependency `opencode-orchestra-<os>-<cpu>`, or ORCHESTRA_BIN_PATH) and runs it with
// the same arguments, stdio and exit code. The binary finds the pinned OpenCode (`opencode-ai`)
// itself, in this package tree.
"use strict";
const { spawnSync } = require("node:child_process");
const path = require("node:path");

const platform = `${process.platform === "win32" ? "windows" : process.platform}-${process.arch}`;
const name = `opencode-orchestra-${platform}`;
const exe = process.platform === "win32" ? "orchestra.exe" : "orchestra";

function binary() {
  if (process.env.ORCHESTRA_BIN_PATH) return process.env.ORCHESTRA_BIN_PATH;
  try {
    return path.join(path.dirname(require.resolve(`${name}/package.json`)), "bin", exe);
  } catch {
    console.error(
      `orchestra: the native binary for ${platform} is missing (npm package ${name}).\n` +
        `Reinstall without --no-optional / --omit=optional (npm i -g opencode-orchestra), or set ` +
        `ORCHESTRA_BIN_PATH to an orchestra binary. Platforms with a package: linux-x64, linux-arm64, ` +
        `darwin-x64, darwin-arm64, windows-x64.`,
    );
    process.exit(1);
  }
}

const result = spawnSync(binary(), process.argv.slice(2), { stdio: "inherit" });
if (result.error) {
  console.error(`orchestra: could not run ${binary()}: ${result.error.message}`);
  process.exit(1);
}
if (result.signal) process.kill(process.pid, result.signal);
process.exit(result.status ?? 1);
