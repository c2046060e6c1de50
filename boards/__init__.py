"""Boards and devices as data: resources, block-RAM geometry, clocks, default engine config.

Imports nothing from ``hw/`` or ``sim/``. ``get_board("arty_a7")`` gives a :class:`Board`,
``get_device("xc7a35t")`` a :class:`Device`.
"""

from .devices import DEVICES, FAMILIES, BramPrimitive, Device, get_device
from .targets import BOARDS, Board, UnknownBoardError, get_board

__all__ = ["BOARDS", "DEVICES", "FAMILIES", "Board", "BramPrimitive", "Device",
           "UnknownBoardError", "get_board", "get_device"]
