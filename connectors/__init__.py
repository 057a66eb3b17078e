"""Adapters between creditstream and the outside world: sources in, sinks out."""
