#!/usr/bin/env bash
# System packages CI needs beyond Python: Debian's Bazel 4.2.3 (bazel-bootstrap) and the local
# copies of platforms and rules_java that .bazelrc points at, for the Bazel build test of the
# rasterizer op. Idempotent; without root or apt-get it skips, and that test then skips itself.
set -u
PACKAGES="bazel-bootstrap bazel-platforms bazel-rules-java"
missing=""
for package in $PACKAGES; do
  if ! dpkg -s "$package" >/dev/null 2>&1; then missing="$missing $package"; fi
done
if [ -z "$missing" ] && command -v bazel >/dev/null 2>&1; then
  echo "install_ci_deps: Bazel packages already installed"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1 || [ "$(id -u)" != "0" ]; then
  echo "install_ci_deps: no apt-get or not root; skipping Bazel (its test will be skipped)"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if apt-get update -qq && apt-get install -y -qq $PACKAGES >/dev/null; then
  echo "install_ci_deps: installed$missing"
else
  echo "install_ci_deps: could not install Bazel; its test will be skipped"
fi
exit 0
