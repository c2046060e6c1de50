"""Checks the engine's output framing against the layer being run."""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.board.raster import RasterCounter, check_max_beats

__all__ = ["FramingCheck"]


class FramingCheck(wiring.Component):
    """Watch the engine's output beats; flag wrong ``first`` / ``last`` and extra beats.

    Counts the beats transferred on the engine's ``o`` stream through ``height * width``
    pixels of ``out_beats`` beats. A beat whose ``first`` / ``last`` is not the one its position
    calls for, or any beat after the layer's last, pulses ``error``. ``done`` rises after the
    layer's last beat (judged by the count, whatever the beat's ``last`` says) and stays up
    until ``begin``.

    Parameters
    ----------
    max_beats : int
        Largest number of output beats per pixel of any layer.

    Members
    -------
    begin : ``In(1)``
        A new layer starts: clear ``done``. ``last_*`` are steady from here to ``done``.
    last_row, last_col : ``In(8)``
    last_beat : ``In(range(max_beats))``
        ``height - 1``, ``width - 1`` and output beats per pixel minus one.
    take : ``In(1)``
        A beat is transferred on the watched stream this cycle.
    first, last : ``In(1)``
        That beat's framing bits.
    error : ``Out(1)``
        Combinational, with ``take``: the beat's framing is wrong or the layer was complete.
    done : ``Out(1)``
        Registered: the layer's last beat has been transferred.

    Latency: ``error`` 0 cycles, ``done`` 1 cycle after the last transfer. Throughput: one beat
    per cycle.

    Raises
    ------
    TypeError, ValueError
        See :func:`~hw.board.raster.check_max_beats`.
    """

    def __init__(self, max_beats):
        self._max_beats = check_max_beats(max_beats)
        super().__init__({
            "begin": In(1),
            "last_row": In(8),
            "last_col": In(8),
            "last_beat": In(range(max_beats)),
            "take": In(1),
            "first": In(1),
            "last": In(1),
            "error": Out(1),
            "done": Out(1),
        })

    @property
    def max_beats(self):
        """Largest number of output beats per pixel."""
        return self._max_beats

    def elaborate(self, platform):
        m = Module()
        m.submodules.position = position = RasterCounter(self._max_beats)
        m.d.comb += [
            position.last_row.eq(self.last_row),
            position.last_col.eq(self.last_col),
            position.last_beat.eq(self.last_beat),
            position.advance.eq(self.take & ~self.done),
            self.error.eq(self.take & (self.done | (self.first != position.first) |
                                       (self.last != position.last))),
        ]
        with m.If(self.begin):
            m.d.sync += self.done.eq(0)
        with m.If(self.take & ~self.done & position.last):
            m.d.sync += self.done.eq(1)
        return m
