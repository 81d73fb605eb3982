# wasmetool toolchain image: Go (upstream Go, not TinyGo) for GOOS=wasip1
# -buildmode=c-shared. Debian 12 only packages Go 1.19, so the release named by
# GO_VERSION is taken from the Go module proxy (golang.org/toolchain, the
# archive `go` itself downloads for GOTOOLCHAIN) and checked against its sha256.
ARG BASE=debian:bookworm-slim
FROM ${BASE}
ARG BASE
LABEL org.wasmetool.toolchain.language=tinygo org.wasmetool.toolchain.base=${BASE}
ARG GO_VERSION
ARG GO_SHA256_AMD64
ARG GO_SHA256_ARM64
ARG GO_PROXY=https://proxy.golang.org
ENV PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# The CA bundle the host trusts (empty if none): TLS-inspecting proxies.
COPY host-ca.crt /tmp/host-ca.crt
RUN set -eu; \
    apt-get update -qq; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        ca-certificates curl unzip >/dev/null; \
    arch="$(dpkg --print-architecture)"; \
    case "$arch" in amd64) sum="$GO_SHA256_AMD64" ;; arm64) sum="$GO_SHA256_ARM64" ;; \
        *) echo "no Go checksum for $arch" >&2; exit 1 ;; esac; \
    module="golang.org/toolchain@v0.0.1-go${GO_VERSION}.linux-${arch}"; \
    cacert=""; if [ -s /tmp/host-ca.crt ]; then cacert="--cacert /tmp/host-ca.crt"; fi; \
    curl $cacert -fsSL -o /tmp/go.zip "${GO_PROXY}/golang.org/toolchain/@v/v0.0.1-go${GO_VERSION}.linux-${arch}.zip"; \
    echo "$sum  /tmp/go.zip" | sha256sum -c - >/dev/null; \
    unzip -q /tmp/go.zip -d /tmp/go-unpacked; \
    mv "/tmp/go-unpacked/$module" /usr/local/go; \
    chmod -R a+rX /usr/local/go; \
    chmod a+x /usr/local/go/bin/* /usr/local/go/pkg/tool/*/*; \
    rm -rf /tmp/go.zip /tmp/go-unpacked /tmp/host-ca.crt; \
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq curl unzip >/dev/null; \
    DEBIAN_FRONTEND=noninteractive apt-get autoremove -y -qq >/dev/null; \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /usr/share/doc /usr/share/man; \
    mkdir -p /etc/wasmetool; \
    echo "go=$(/usr/local/go/bin/go version)" > /etc/wasmetool/versions; \
    sed 's/^/wasmetool-version /' /etc/wasmetool/versions
