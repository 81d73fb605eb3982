# wasmetool toolchain image: C/C++ -> wasm32-wasi with Debian's clang, lld,
# wasi-libc, libc++ and compiler-rt for wasm32 (the packages the local route
# installs, so both routes run the same compiler with the same flags).
ARG BASE=debian:bookworm-slim
FROM ${BASE}
ARG BASE
LABEL org.wasmetool.toolchain.language=cpp org.wasmetool.toolchain.base=${BASE}
RUN set -eu; \
    apt-get update -qq; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        clang lld wasi-libc libc++-dev-wasm32 libclang-rt-dev-wasm32 >/dev/null; \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /usr/share/doc /usr/share/man; \
    mkdir -p /etc/wasmetool; \
    { echo "clang=$(clang++ --version | head -n1)"; \
      echo "wasi-libc=$(dpkg-query -W -f='${Version}' wasi-libc)"; \
      echo "libc++=$(dpkg-query -W -f='${Version}' libc++-dev-wasm32)"; } > /etc/wasmetool/versions; \
    sed 's/^/wasmetool-version /' /etc/wasmetool/versions
