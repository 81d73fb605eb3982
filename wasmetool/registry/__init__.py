"""OCI registries: push, pull, login/logout, remote tags (see docs/registry.md)."""
