#!/bin/sh
# Regenerates states.csv, the built-in STATES data, from the npm package
# us-atlas (US Census outlines, ISC licence). Needs npm and Go. Run from
# anywhere; writes diffusion/data/states/states.csv in this checkout.
#
# us-atlas is installed once into $US_ATLAS_DIR (default
# ~/.cache/godiffusion/us-atlas-VERSION), outside the repository.
set -eu
VERSION=3.0.1
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
dir=${US_ATLAS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/godiffusion/us-atlas-$VERSION}
atlas="$dir/node_modules/us-atlas/states-10m.json"
if [ ! -f "$atlas" ]; then
	mkdir -p "$dir"
	(cd "$dir" && npm install --no-save --no-package-lock --ignore-scripts "us-atlas@$VERSION")
fi
installed=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$dir/node_modules/us-atlas/package.json")
if [ "$installed" != "$VERSION" ]; then
	echo "gen.sh: $dir has us-atlas $installed, want $VERSION" >&2
	exit 1
fi
cd "$root"
GOEXPERIMENT=simd go run ./diffusion/cmd/statesgen -atlas "$atlas" -out diffusion/data/states/states.csv
