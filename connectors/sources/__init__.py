"""Source adapters: industry formats in, contract events out.

One module per standard. Decoders (``aemp``, ``gbt32960``, ``epcis``, ``invoices``) are
pure: bytes in, events or :class:`~connectors.sources.common.SourceError` out, no I/O.
The I/O lives beside them (``aemp_client``, ``gbt32960_server``, ``emit``) and stays thin.
"""
