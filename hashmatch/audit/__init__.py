"""The audit trail: every call, hash-chained, verifiable; usage reports are read from it."""
