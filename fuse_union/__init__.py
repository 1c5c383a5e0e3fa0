"""fuse-union: a FUSE union filesystem with overlayfs' semantics, and its storage driver.

The fallback where kernel overlay cannot serve (overlay as the backing filesystem, no
d_type, no overlay module, some user-namespace setups), reading and writing the overlay2
driver's own layer store so switching between the two never re-extracts a layer.
Nothing here imports pyfuse3 or trio at import time except the server modules
(:mod:`.fs`, :mod:`.server`), which run in the FUSE server process.
"""
