module {{NAME}}

go 1.24

// The Go SDK has no release tags: this pseudo-version pins one commit.
require github.com/proxy-wasm/proxy-wasm-go-sdk v0.0.0-20260105142703-44c7d5847745
