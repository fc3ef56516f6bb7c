"""The PhotoDNA-compatible REST face: a small ASGI app over the same service core."""
