#!/usr/bin/env bash
# System packages CI needs beyond Python: Debian's Bazel 4.2.3 for the Bazel build test of the
# rasterizer op. Idempotent; skips (the Bazel test then skips itself) without root or apt-get.
set -u
if command -v bazel >/dev/null 2>&1; then
  echo "install_ci_deps: bazel already installed"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1 || [ "$(id -u)" != "0" ]; then
  echo "install_ci_deps: no apt-get or not root; skipping Bazel (its test will be skipped)"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if apt-get update -qq && apt-get install -y -qq bazel-bootstrap bazel-platforms bazel-rules-java >/dev/null; then
  echo "install_ci_deps: installed Debian's bazel-bootstrap"
else
  echo "install_ci_deps: could not install Bazel; its test will be skipped"
fi
exit 0
