"""NumPy golden model of compressed SqueezeNet: codec, networks, float and fixed-point references.

This package imports nothing from the rest of the project: it is the contract that ``hw/``
implements and that ``sim/`` and ``tests/`` check against.
"""
