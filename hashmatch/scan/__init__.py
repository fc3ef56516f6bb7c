"""Bulk re-scans: a tree, a list or an object-store prefix in, one Parquet row per input out,
resumable and exactly-once (a manifest of completed shards, each written atomically)."""
