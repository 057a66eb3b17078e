"""aiohttp's own HTTP parser errors, logged as one warning line instead of a traceback.

A request line over 8 KB, a raw space or a control character in the path never reaches a
handler: aiohttp answers 400 itself and logs "Error handling request" at ERROR with the
parser's traceback. That is a client's mistake, not the server's, and an alert on ERROR
lines would fire on every scanner. Both HTTP servers (gateway, lender API) install this.
"""

from __future__ import annotations

import logging

from aiohttp.http_exceptions import HttpProcessingError


class ParserErrorsAsWarnings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            record.msg = f"{record.msg}: bad HTTP request ({type(exc).__name__}, {exc.code})"
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


_FILTER = ParserErrorsAsWarnings()


def install() -> None:
    """Idempotent: a logger holds a filter once however often an app is built."""
    logger = logging.getLogger("aiohttp.server")
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
