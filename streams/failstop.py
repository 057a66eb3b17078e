"""Stopping the worker process when a batch failed outside the processors.

A module of its own so that the app and the lanes share it without importing each other.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)


def fail_stop(where: str) -> None:
    """Stop the process at once, without committing offsets.

    An exception outside the processors (they turn bad data into dead letters) means the
    outputs of a batch may not have been produced. Faust would restart the agent and, on
    its way down, commit the offsets of the batch it had acknowledged, losing it; exiting
    at once (exit code 70, EX_SOFTWARE) instead makes the batch be read again by the
    restarted worker (the supervisor's or the operator's restart)."""
    log.critical("%s failed; stopping the worker so the batch is read again", where, exc_info=True)
    logging.shutdown()
    os._exit(70)
