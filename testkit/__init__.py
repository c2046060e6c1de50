"""Drivers and case builders shared by ``tests/`` and ``sim/`` (neither imports the other)."""
