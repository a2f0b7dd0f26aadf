#!/usr/bin/env bash
# Installs the Debian packages whose servers the tests start (on 127.0.0.1, free ports).
# Idempotent: does nothing when every binary is already present.
set -euo pipefail

declare -A needs=(
    [redis-server]=redis-server
    [promtool]=prometheus  # checks deploy/prometheus/alerts.yml in the tests
    [chromium]=chromium  # renders the monitoring page in the tests (headless)
    [espeak-ng]=espeak-ng  # speaks the moderation evaluation set's audio and video items
)

missing=()
for binary in "${!needs[@]}"; do
    command -v "$binary" >/dev/null 2>&1 || missing+=("${needs[$binary]}")
done
# PostgreSQL's server binaries live off PATH, under /usr/lib/postgresql/<version>/bin
compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || missing+=(postgresql)
# vtest.avi (795 street frames): real footage for the vision runtime's tests
[ -f /usr/share/doc/opencv-doc/examples/data/vtest.avi ] || missing+=(opencv-doc)
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "Installing Debian packages: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
