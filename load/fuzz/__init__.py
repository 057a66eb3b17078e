"""The bad-input campaign: hypothesis-generated hostile and broken inputs against every
decoder, the processors, and (with the stack) a real worker and the gateway.

``inputs`` builds the inputs, ``targets`` says what each decoder must do with them,
``campaign`` runs and tallies them in-process, ``broker`` sends a sample through Kafka and
HTTP. ``creditstream fuzz run`` is the command; docs/security.md has the figures.
"""
