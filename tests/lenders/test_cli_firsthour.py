"""What a newcomer sees first (issue 14): long-running commands print one line with
their address when ready; every option of these commands has help and shows its default."""

from __future__ import annotations

import argparse
import asyncio
import signal

import pytest

from creditstream.cli import build_parser
from creditstream.stack.process import free_port
from tests.lenders.ld_support import CLI

MINE = ("lenders", "gateway", "keys", "ledger", "parties", "demo", "test")


async def _first_line(*args: str) -> str:
    """The first stdout line of a long-running command, then SIGTERM; it must exit 0."""
    proc = await asyncio.create_subprocess_exec(CLI, *args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()  # type: ignore[union-attr]
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 60)
    return line.strip()


@pytest.mark.integration
async def test_long_running_commands_print_one_ready_line_with_their_address(bootstrap: str, uid: str) -> None:
    from connectors.ledger.service import TOPICS
    from tests.lenders.ld_support import group_at_end

    group = f"test-ready-{uid}"
    await group_at_end(bootstrap, group, list(TOPICS))  # nothing old is written again
    port = free_port()
    assert await _first_line("gateway", "--port", str(port)) == (
        f"gateway: ready; POST http://127.0.0.1:{port}/v1/events (Kafka {bootstrap})")
    port = free_port()
    assert await _first_line("lenders", "serve", "--port", str(port), "--no-webhooks") == (
        f"lenders serve: ready; API http://127.0.0.1:{port}/v1/, console "
        f"http://127.0.0.1:{port}/console/, webhooks off")
    line = await _first_line("ledger", "--group", group)
    assert line.startswith(f"ledger: ready; consuming cs.limits and cs.alerts from {bootstrap} "
                           f"as group {group} into PostgreSQL at 127.0.0.1:")


def _options(parser: argparse.ArgumentParser, path: list[str]):  # type: ignore[no-untyped-def]
    for action in parser._actions:  # noqa: SLF001
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            for name, child in action.choices.items():
                yield from _options(child, [*path, name])
        elif not isinstance(action, argparse._HelpAction):  # noqa: SLF001
            yield " ".join(path), action, parser


def test_every_option_of_these_commands_has_help_and_its_default() -> None:
    missing, no_default = [], []
    for path, action, parser in _options(build_parser(), []):
        if path.split()[0] not in MINE:
            continue
        if not action.help:
            missing.append((path, action.option_strings or action.dest))
        if action.option_strings and action.default not in (None, False, "", argparse.SUPPRESS):
            text = " ".join(parser.format_help().split())
            if f"default: {action.default}" not in text and "default" not in action.help.lower():
                no_default.append((path, action.option_strings))
    assert missing == [] and no_default == []


def test_help_shows_defaults_and_the_webhook_url_rule(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["gateway", "--help"])
    out = capsys.readouterr().out
    assert "address to listen on (default: 127.0.0.1)" in out
    assert "requests in flight before 429 (default: 32)" in out
    with pytest.raises(SystemExit):
        build_parser().parse_args(["lenders", "add", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "https:// to a public address (http:// only to this machine, with --allow-loopback-webhooks)" in out
