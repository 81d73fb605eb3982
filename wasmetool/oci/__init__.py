"""OCI data model: references, media types, descriptors, runtime-config, image formats."""
