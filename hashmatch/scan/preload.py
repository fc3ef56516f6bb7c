"""Imported by the scan's fork server, and only there: the engine's kernels are loaded
once in it, so every worker process forked from it starts warm (a cold worker spends
~0.8 s importing and loading kernels, a tenth of a 10,000-image scan on two cores)."""

from hashmatch.scan.worker import warm

warm()
