#!/usr/bin/env bash
# Installs arrow-go's Flight integration peers (client and server) into a
# project-local GOBIN (.cache/go-bin). Idempotent: skips the build when both
# binaries are present and were built from the pinned module version.
#
#   scripts/install-go-peers.sh            # install (or verify) the pinned version
#   ARROW_GO_VERSION=v18.x.y scripts/install-go-peers.sh
#   FORCE=1 scripts/install-go-peers.sh    # rebuild even if present
#
# Needs only Go (>= the version arrow-go's go.mod requires) and a module proxy.
set -euo pipefail

ARROW_GO_VERSION="${ARROW_GO_VERSION:-v18.8.0}"
MODULE="github.com/apache/arrow-go/v18"
CMD_DIR="arrow/internal/flight_integration/cmd"
COMMANDS=(arrow-flight-integration-server arrow-flight-integration-client)

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GOBIN_DIR="${GO_PEERS_BIN:-$ROOT/.cache/go-bin}"
STAMP="$GOBIN_DIR/.arrow-go-version"

if ! command -v go >/dev/null 2>&1; then
  echo "install-go-peers: 'go' is not on PATH (need Go to build arrow-go's integration peers)" >&2
  exit 2
fi

mkdir -p "$GOBIN_DIR"

# Is the binary built from the pinned module version? `go version -m` reads the
# build info embedded in the binary, so this survives a missing stamp file.
built_at_version() {
  local bin="$1"
  [[ -x "$bin" ]] || return 1
  go version -m "$bin" 2>/dev/null | awk -v m="$MODULE" -v v="$ARROW_GO_VERSION" \
    '$1=="mod" && $2==m && $3==v {found=1} END {exit found?0:1}'
}

if [[ -z "${FORCE:-}" ]]; then
  all_ok=1
  for cmd in "${COMMANDS[@]}"; do
    built_at_version "$GOBIN_DIR/$cmd" || { all_ok=0; break; }
  done
  if [[ $all_ok == 1 ]]; then
    echo "install-go-peers: arrow-go $ARROW_GO_VERSION peers already in $GOBIN_DIR"
    exit 0
  fi
fi

start=$(date +%s)
echo "install-go-peers: installing arrow-go $ARROW_GO_VERSION integration peers into $GOBIN_DIR"
# GOFLAGS=-mod=mod keeps a surrounding go.work / vendor setting from interfering;
# the install runs outside any module so `@version` resolution is used.
(
  cd "$GOBIN_DIR"
  export GOBIN="$GOBIN_DIR"
  export GOWORK=off
  export CGO_ENABLED="${CGO_ENABLED:-0}"
  pkgs=()
  for cmd in "${COMMANDS[@]}"; do pkgs+=("$MODULE/$CMD_DIR/$cmd@$ARROW_GO_VERSION"); done
  go install "${pkgs[@]}"
)

for cmd in "${COMMANDS[@]}"; do
  if ! built_at_version "$GOBIN_DIR/$cmd"; then
    echo "install-go-peers: $GOBIN_DIR/$cmd was not built from $MODULE@$ARROW_GO_VERSION" >&2
    exit 1
  fi
done
echo "$ARROW_GO_VERSION" >"$STAMP"
echo "install-go-peers: done in $(( $(date +%s) - start ))s"
