"""The `creditstream` command: one entry point, a subcommand per job."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable

from schemas import config

Handler = Callable[[argparse.Namespace], int]


def _stack(args: argparse.Namespace) -> int:
    from creditstream.stack import manager

    settings = config.load()
    try:
        if args.action == "init":
            manager.init(settings, timeout=args.timeout)
        elif args.action == "up":
            settings = manager.with_brokers(settings, args.brokers)
            manager.up(settings, timeout=args.timeout)
            manager.print_status(settings)
        elif args.action == "down":
            manager.down(settings)
        else:
            return manager.print_status(settings, as_json=args.json)
    except manager.StackError as exc:
        print(f"stack {args.action} failed: {exc}", file=sys.stderr)
        return 1
    return 0


def _schemas(args: argparse.Namespace) -> int:
    from schemas import jsonschema

    if args.action == "generate":
        for path in jsonschema.write():
            print(path)
        return 0
    stale = jsonschema.stale_files()
    if stale:
        print("JSON Schema files out of date: " + ", ".join(stale)
              + "\nrun `creditstream schemas generate`", file=sys.stderr)
        return 1
    print("JSON Schema files are up to date")
    return 0


def _topics(args: argparse.Namespace) -> int:
    from schemas.topics import markdown_table

    print(markdown_table(), end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="creditstream", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("stack", help="local Kafka + PostgreSQL: up, down, status")
    s.add_argument("action", choices=["up", "down", "status", "init"],
                   help="init: create topics and apply migrations on configured servers")
    s.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for readiness (default 90)")
    s.add_argument("--brokers", type=int, choices=[1, 3], default=1,
                   help="up: Kafka nodes; 3 runs a KRaft cluster with replication 3 and "
                        "min.insync.replicas 2, for fault runs (default 1)")
    s.add_argument("--json", action="store_true", help="status as JSON")
    s.set_defaults(func=_stack)

    s = sub.add_parser("schemas", help="JSON Schema files for producers: generate or check")
    s.add_argument("action", choices=["generate", "check"])
    s.set_defaults(func=_schemas)

    s = sub.add_parser("topics", help="print the topic catalogue as a markdown table")
    s.set_defaults(func=_topics)

    from creditstream import commands

    commands.register(sub)
    _show_defaults(p)
    return p


class _DefaultsFormatter(argparse.HelpFormatter):
    """Every option's help ends with its default, unless the text already says it or
    there is none worth saying (None, False)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (action.option_strings and action.default not in (None, False, argparse.SUPPRESS)
                and "default" not in text.lower()):
            text += " (default: %(default)s)"
        return text


def _show_defaults(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = _DefaultsFormatter
    for action in parser._actions:  # noqa: SLF001 - argparse has no public walk
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            for child in action.choices.values():
                _show_defaults(child)


def _unreachable(args: argparse.Namespace, exc: BaseException) -> str | None:
    """One line for a server that did not answer (issue 14: a 55-line traceback ending in
    ConnectionRefusedError was all `keys list` said with the stack down), or None."""
    from urllib.parse import urlsplit

    if isinstance(exc, RuntimeError) and "no PostgreSQL configured" in str(exc):
        return str(exc)
    aiokafka = type(exc).__module__.startswith("aiokafka") and "Connection" in type(exc).__name__
    if not (isinstance(exc, OSError | TimeoutError) or aiokafka):
        return None
    frames = [f.filename for f in traceback.extract_tb(exc.__traceback__)]
    settings = config.load()
    if aiokafka or any("/aiokafka/" in f for f in frames):
        where = f"Kafka at {getattr(args, 'bootstrap', None) or settings.kafka_bootstrap}"
    elif any("/asyncpg/" in f for f in frames):
        url = urlsplit(getattr(args, "pg_url", None) or settings.pg_url)  # never the password
        where = f"PostgreSQL at {url.hostname}:{url.port or 5432}"
    else:
        return None
    why = os.strerror(exc.errno) if isinstance(exc, OSError) and exc.errno else type(exc).__name__
    return f"cannot reach {where} ({why}): run `creditstream stack up` (or set CREDITSTREAM_PG_URL / " \
           "CREDITSTREAM_KAFKA_BOOTSTRAP to servers that run)"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Handler = args.func
    try:
        return func(args)
    except Exception as exc:
        line = _unreachable(args, exc)
        if line is None:
            raise
        print(f"creditstream {args.command}: {line}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
