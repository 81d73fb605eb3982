"""A proxy-wasm host on wasmtime: runs Envoy/Istio wasm filters without Envoy."""
