"""Video: vPDQ-compatible hashing (PDQ per sampled frame) and matching."""
