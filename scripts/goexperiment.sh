#!/usr/bin/env bash
# Prints the GOEXPERIMENT the project builds with for the `go` on PATH (its GOTOOLCHAIN
# respected): "simd" on Go 1.26, the release the SIMD kernels of gomlx/compute v0.1.2 (GoMLX
# v0.28) are written for; nothing on any other Go. Go 1.27 changed the API of simd/archsimd, so
# a GOEXPERIMENT=simd build of compute v0.1.2 fails there; without it every package builds and
# the Go backend runs its portable kernels (several times slower; backend.Describe warns).
# Used by the Makefile and by scripts/setup.sh for the Jupyter kernel.
set -euo pipefail
version=$(go env GOVERSION)
case "$version" in
  go1.26|go1.26.*) echo simd ;;
  *) echo "goexperiment.sh: $version: building without GOEXPERIMENT=simd (the SIMD kernels of gomlx/compute v0.1.2 build on Go 1.26 only; GOTOOLCHAIN=go1.26.8 selects it)" >&2 ;;
esac
