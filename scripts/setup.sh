#!/usr/bin/env bash
# Installs everything the notebooks, the tests and the report need, and the project's
# Jupyter kernels. Idempotent: a second run only checks. Used by `make setup`, by CI
# (.ci/run -> make test) and by the Docker images, so what is tested is what ships.
#
#   scripts/setup.sh            everything
#   SKIP_APT=1 scripts/setup.sh only the Go tools and kernels (e.g. not root, packages
#                               already installed)
#   SKIP_TORCH=1                no PyTorch (its .pt/.npy compatibility tests then skip)
#   SKIP_PDF=1 scripts/setup.sh no Chromium/poppler (no PDF report; e.g. on Ubuntu, whose
#                               chromium is a snap)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"

# Pinned versions. GoNB v0.11.5 is the newest the Go module proxy serves here; its
# kernel runs `go get`, goimports and gopls, pinned to versions built with Go 1.26.
GONB_VERSION=v0.11.5
X_TOOLS_VERSION=v0.44.0
GOPLS_VERSION=v0.21.1

# Debian packages: Jupyter (nbconvert/nbclient run notebooks headless, the classic
# notebook server for interactive use), Chromium for the PDF, MathJax and RequireJS
# served from disk so exported HTML renders offline, poppler-utils to check the PDF.
APT_PACKAGES=(python3-nbconvert python3-nbclient python3-jupyter-client python3-ipykernel
  jupyter-notebook libjs-mathjax libjs-requirejs fonts-dejavu-core)
[ "${SKIP_PDF:-}" = 1 ] || APT_PACKAGES+=(chromium poppler-utils)
# PyTorch (CPU, Debian's 1.13) and numpy: the tests check that the .pt and .npy
# deliverables load in torch/numpy, and shared/bench/torch_peer.py measures the peer.
[ "${SKIP_TORCH:-}" = 1 ] || APT_PACKAGES+=(python3-torch python3-numpy)

log() { printf '[setup] %s\n' "$*"; }

install_apt() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then log "Debian packages: present"; return; fi
  log "Debian packages to install: ${missing[*]}"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "setup: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
    sudo=sudo
  fi
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
}

gobin() { local b; b=$(go env GOBIN); [ -n "$b" ] || b="$(go env GOPATH)/bin"; echo "$b"; }

# go_build_tool NAME PACKAGE MODULE@VERSION: `go install pkg@version` is refused for some
# modules by the proxy here, so build from a throw-away module that `go get`s it.
go_build_tool() {
  local name=$1 pkg=$2 modver=$3 bin stamp
  bin="$(gobin)/$name"; stamp="$(gobin)/.$name.version"
  if [ -x "$bin" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$modver" ]; then
    log "$name $modver: present"; return
  fi
  log "building $name from $modver"
  local tmp; tmp=$(mktemp -d)
  (cd "$tmp" && go mod init setup.tmp/"$name" >/dev/null 2>&1 \
    && GOFLAGS=-mod=mod go get "$modver" \
    && GOFLAGS=-mod=mod go build -o "$bin.tmp" "$pkg") || { rm -rf "$tmp"; exit 1; }
  mv "$bin.tmp" "$bin"; echo "$modver" > "$stamp"; rm -rf "$tmp"
}

install_go_tools() {
  command -v go >/dev/null || { echo "setup: Go is not installed (need Go >= 1.26)" >&2; exit 1; }
  mkdir -p "$(gobin)"
  go_build_tool gonb github.com/janpfeifer/gonb "github.com/janpfeifer/gonb@$GONB_VERSION"
  go_build_tool goimports golang.org/x/tools/cmd/goimports "golang.org/x/tools@$X_TOOLS_VERSION"
  go_build_tool gopls golang.org/x/tools/gopls "golang.org/x/tools/gopls@$GOPLS_VERSION"
  log "downloading the project's Go modules"
  go mod download
}

# install_kernel NAME: renders kernels/NAME/kernel.json.in (placeholders @GONB@, @PATH@,
# @GOEXPERIMENT@: scripts/goexperiment.sh)
# into the user's Jupyter data dir (a temp file renamed into place).
install_kernel() {
  local name=$1 dir tmp
  dir="$(/usr/bin/python3 -m jupyter --data-dir)/kernels/$name"
  mkdir -p "$dir"; tmp=$(mktemp "$dir/kernel.json.XXXX")
  local path_value="$(gobin):$(dirname "$(command -v go)"):/usr/local/bin:/usr/bin:/bin"
  sed -e "s|@GONB@|$(gobin)/gonb|g" -e "s|@PATH@|$path_value|g" -e "s|@GOEXPERIMENT@|$(scripts/goexperiment.sh)|g" \
    "kernels/$name/kernel.json.in" > "$tmp"
  mv "$tmp" "$dir/kernel.json"
  cp kernels/logo-svg.svg "$dir/logo-svg.svg"
  log "kernel $name installed in $dir"
}

[ "${SKIP_APT:-}" = 1 ] || install_apt
install_go_tools
install_kernel go-diffusion
install_kernel go-diffusion-cuda
log "done"
