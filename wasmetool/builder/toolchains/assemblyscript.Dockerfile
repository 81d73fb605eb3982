# wasmetool toolchain image: Node.js and npm for AssemblyScript. The compiler
# itself (assemblyscript, pinned by the project's package-lock.json) is
# installed by `npm ci` at build time, as on the local route.
ARG BASE=debian:bookworm-slim
FROM ${BASE}
ARG BASE
LABEL org.wasmetool.toolchain.language=assemblyscript org.wasmetool.toolchain.base=${BASE}
RUN set -eu; \
    apt-get update -qq; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        nodejs npm ca-certificates >/dev/null; \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /usr/share/doc /usr/share/man; \
    mkdir -p /etc/wasmetool; \
    { echo "node=$(node --version)"; echo "npm=$(npm --version)"; } > /etc/wasmetool/versions; \
    sed 's/^/wasmetool-version /' /etc/wasmetool/versions
