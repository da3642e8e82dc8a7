#!/usr/bin/env bash
# Installs the real CLI clients the end-to-end suite drives: Claude Code, Codex CLI and Gemini CLI, from npm,
# into tests/e2e/.clients (gitignored). Idempotent: a client already installed and runnable is kept.
# Fails loudly (non-zero exit, npm's own output) when npm cannot install a client.
#
# The versions are pinned (the suite was verified with these; a client release can change what it sends):
# bump them here after running the suite with the new ones, e.g. CLAUDE_CODE_VERSION=latest.
#
#   bash tests/e2e/install-clients.sh          # install what is missing
#   E2E_CLIENTS_DIR=/some/dir bash ...          # install elsewhere (the tests read the same variable)
set -euo pipefail

CLAUDE_CODE_VERSION="${CLAUDE_CODE_VERSION:-2.1.197}"
CODEX_VERSION="${CODEX_VERSION:-0.169.0}"
GEMINI_CLI_VERSION="${GEMINI_CLI_VERSION:-0.61.0}"

here="$(cd "$(dirname "$0")" && pwd)"
prefix="${E2E_CLIENTS_DIR:-$here/.clients}"
mkdir -p "$prefix"

command -v npm >/dev/null 2>&1 || { echo "install-clients: npm not found (install nodejs and npm)" >&2; exit 1; }

# version BIN: what the installed client prints for --version (empty when it does not run; no network needed).
version() {
  local bin="$prefix/bin/$1" home
  [ -x "$bin" ] || return 0
  home="$(mktemp -d)"
  HOME="$home" timeout 30 "$bin" --version 2>/dev/null | head -n1 || true
  rm -rf "$home"
}

# runnable BIN VERSION: the client starts, and is the wanted version (any version when VERSION is "latest").
runnable() {
  local found
  found="$(version "$1")"
  [ -n "$found" ] && { [ "$2" = latest ] || [[ "$found" == *"$2"* ]]; }
}

install_one() {
  local package="$1" bin="$2" want="$3"
  if runnable "$bin" "$want"; then
    echo "install-clients: $bin already installed: $(version "$bin")"
    return
  fi
  echo "install-clients: installing $package@$want into $prefix"
  local start=$SECONDS
  if ! npm install --global --prefix "$prefix" --no-audit --no-fund --loglevel=error "$package@$want"; then
    echo "install-clients: FAILED: npm install $package@$want" >&2
    exit 1
  fi
  if ! runnable "$bin" "$want"; then
    echo "install-clients: FAILED: $package@$want installed but '$prefix/bin/$bin --version' does not run" >&2
    exit 1
  fi
  echo "install-clients: $bin $(version "$bin") installed in $((SECONDS - start)) s"
}

install_one @anthropic-ai/claude-code claude "$CLAUDE_CODE_VERSION"
install_one @openai/codex codex "$CODEX_VERSION"
install_one @google/gemini-cli gemini "$GEMINI_CLI_VERSION"
