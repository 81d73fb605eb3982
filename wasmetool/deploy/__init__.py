"""`wasmetool deploy` / `undeploy`: Istio (WasmPlugin, legacy EnvoyFilter+ConfigMap), Envoy, Gloo."""
