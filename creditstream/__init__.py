"""creditstream: dynamic credit limits from supply-chain and IoT event streams."""

__version__ = "0.1.0"
