"""The errors the streams package raises, under one base.

``except StreamsError`` catches every error of the engine's own (an input refused, a
policy file that does not load, a lane that cannot go on, a policy diff that failed) and
nothing else, so a caller
(the CLI, a test) can tell the engine's refusals from bugs.
The domain's errors live beside the code that raises them (``signals.Rejected``,
``policyfile.PolicyFileError``); the runtime's are here.
"""

from __future__ import annotations


class StreamsError(Exception):
    """Base of every error the streams package raises on purpose."""


class DiffError(StreamsError, RuntimeError):
    """A policy diff (streams/policylab.py) that cannot be run as asked (a pool stage with
    several processes) or whose process failed."""


class LaneError(StreamsError):
    """A lane (streams/fastlane.py) met a state it cannot go on from (a Faust changelog it
    adopted that could not be deleted): the worker stops rather than guess."""
