#!/usr/bin/env bash
# Thin wrapper around the `imagegen` command, with the same arguments.
# On a fresh clone it creates ./.venv and installs imagegen there once (needs Python 3.11+).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"
if [ ! -x "$venv/bin/imagegen" ]; then
  if command -v imagegen >/dev/null 2>&1; then
    exec imagegen "$@"
  fi
  python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
    echo "image-gen.sh: imagegen needs Python 3.11 or newer as python3" >&2; exit 2; }
  echo "image-gen.sh: first run: installing imagegen into $venv (once)..." >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -e "$here"
fi
exec "$venv/bin/imagegen" "$@"
