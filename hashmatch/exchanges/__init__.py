"""Hash exchanges: lists that arrive live from NCMEC, StopNCII and ThreatExchange."""
