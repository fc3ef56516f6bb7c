"""`hashmatch loadtest`: load against any hashmatch server, from any machine.

Client-side only (grpcio, httpx, numpy; matplotlib for plots): no kernels or decoders are
loaded unless `match-hashes` hashes the images locally first.
"""
