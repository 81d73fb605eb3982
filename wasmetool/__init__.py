"""wasmetool: build, store, run, push and deploy proxy-wasm filters."""

__version__ = "0.1.0"
