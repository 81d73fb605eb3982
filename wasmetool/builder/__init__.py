"""Builders: turn a filter's source tree (or a prebuilt .wasm) into a stored image."""
