#!/bin/sh
# Links kubectl-palisade into a directory on PATH, where kubectl finds it as
# `kubectl palisade`: npm run plugin:install -- DIR (default ~/.local/bin).
# The link points into this checkout, which must keep its node_modules.
set -e
dir=${1:-$HOME/.local/bin}
here=$(cd "$(dirname "$0")" && pwd -P)
if [ ! -x "$here/../node_modules/.bin/node" ]; then
  echo "plugin:install: run npm install first (the plugin runs on the pinned Node in node_modules)" >&2
  exit 1
fi
mkdir -p "$dir"
ln -sf "$here/kubectl-palisade" "$dir/kubectl-palisade"
echo "linked $dir/kubectl-palisade -> $here/kubectl-palisade"
case ":$PATH:" in
  *":$dir:"*) echo "try: kubectl palisade --help" ;;
  *) echo "$dir is not on PATH: add it (export PATH=\"$dir:\$PATH\") so that kubectl finds the plugin" >&2 ;;
esac
