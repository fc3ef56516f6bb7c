"""hashmatch: an open, self-hostable image-signature matching service (PDQ, MD5, SHA-256)."""

__version__ = "0.1.0"
