"""Source adapters: industry formats in, contract events out.

One module per standard. Decoders (``aemp``, ``gbt32960``, ``epcis``, ``invoices``) are
pure: bytes in, events or :class:`~connectors.sources.common.SourceError` out, no I/O.
The I/O lives beside them (``aemp_client``, ``gbt32960_server``, ``emit``) and stays thin.
Helpers with one job each: ``aemp_ids`` (which header field is a machine's id),
``gbt32960_access`` (platform login, pledged VINs), ``ubl_parties`` (parties without a
VAT number), ``credit_notes`` (a credit note reduces its invoice), ``vat_keys`` (pinyin keys).
"""
