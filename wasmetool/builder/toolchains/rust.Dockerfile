# wasmetool toolchain image: Rust -> wasm32-wasip1 with Debian's rustc-web and
# its own std sources (cargo -Zbuild-std), linked by wasm-ld-22 against
# wasi-libc: the same packages and flags as the local build-std route.
ARG BASE=debian:bookworm-slim
FROM ${BASE}
ARG BASE
LABEL org.wasmetool.toolchain.language=rust org.wasmetool.toolchain.base=${BASE}
RUN set -eu; \
    apt-get update -qq; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        rustc-web cargo-web rust-web-src lld-22 wasi-libc ca-certificates >/dev/null; \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /usr/share/doc /usr/share/man; \
    mkdir -p /etc/wasmetool; \
    { echo "rustc=$(rustc -V)"; echo "cargo=$(cargo -V)"; \
      echo "wasm-ld=$(wasm-ld-22 --version)"; \
      echo "wasi-libc=$(dpkg-query -W -f='${Version}' wasi-libc)"; } > /etc/wasmetool/versions; \
    sed 's/^/wasmetool-version /' /etc/wasmetool/versions
