"""CLI subcommands, one module each. Each exposes `register(subparsers)`, which adds its
parser and sets `run(args, io) -> ExitCode` as the parser's default `run`."""
