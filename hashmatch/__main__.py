from hashmatch.cli import entrypoint

entrypoint()
