"""The local store: an OCI image layout of built and pulled filters."""

from wasmetool.store.image import Image
from wasmetool.store.layout import Store

__all__ = ["Image", "Store"]
