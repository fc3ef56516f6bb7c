"""Signature indexes: exact PDQ range search and MD5/SHA-256 lookup (see the banks issue)."""
