"""The errors the connectors raise, under one base.

``except ConnectorError`` catches every refusal of the connectors' own (a source item
that is not a valid event, a data key that cannot open a field, a bad signature, a
webhook URL or query parameter out of its form, a sink asked to stop) and nothing else.
Each error lives beside the code that raises it; the ones that were ``ValueError`` (or
``RuntimeError``) still are, so a caller that caught those still does.
"""

from __future__ import annotations


class ConnectorError(Exception):
    """Base of every error the connectors raise on purpose."""


class BadParameter(ConnectorError, ValueError):
    """A path or query parameter of an HTTP API out of its form or range: answered 400
    with the reason (the lender API and the policy lab)."""
