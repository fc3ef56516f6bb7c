"""Reports to NCMEC's CyberTipline (or a test endpoint) through a durable outbox."""
