"""Raster position of a layer's stream: beat within pixel, column, row."""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["RasterCounter", "check_max_beats"]


def check_max_beats(max_beats):
    """Validate a largest number of beats per pixel; returns it.

    Raises
    ------
    TypeError
        If ``max_beats`` is not an integer (``bool`` included).
    ValueError
        If ``max_beats`` is below 1.
    """
    if not isinstance(max_beats, int) or isinstance(max_beats, bool):
        raise TypeError(f"Beats per pixel must be a positive integer, not {max_beats!r}")
    if max_beats < 1:
        raise ValueError(f"Beats per pixel must be a positive integer, not {max_beats!r}")
    return max_beats


class RasterCounter(wiring.Component):
    """Where in a ``rows x cols`` image of ``beats``-beat pixels the next beat of a stream is.

    The position starts at the origin, moves one beat per ``advance`` (beats, then columns,
    then rows) and wraps back to the origin after the last beat of the last pixel, ready for
    the next layer. ``first`` and ``last`` are the ``first`` / ``last`` framing the beat at the
    current position should carry.

    Parameters
    ----------
    max_beats : int
        Largest number of beats per pixel (at least 1).

    Members
    -------
    last_row, last_col : ``In(8)``
        ``height - 1`` and ``width - 1``; steady while a layer is counted.
    last_beat : ``In(range(max_beats))``
        Beats per pixel minus one; steady while a layer is counted.
    advance : ``In(1)``
        A beat was transferred: move on.
    row, col : ``Out(8)``
    beat : ``Out(range(max_beats))``
        The position, registered.
    first, last : ``Out(1)``
        The position is the origin / the last beat of the last pixel.

    Latency: ``first`` and ``last`` are combinational from the position, which moves the cycle
    after ``advance``. Throughput: one beat per cycle.

    Raises
    ------
    TypeError, ValueError
        See :func:`check_max_beats`.
    """

    def __init__(self, max_beats):
        self._max_beats = check_max_beats(max_beats)
        super().__init__({
            "last_row": In(8),
            "last_col": In(8),
            "last_beat": In(range(max_beats)),
            "advance": In(1),
            "row": Out(8),
            "col": Out(8),
            "beat": Out(range(max_beats)),
            "first": Out(1),
            "last": Out(1),
        })

    @property
    def max_beats(self):
        """Largest number of beats per pixel."""
        return self._max_beats

    def elaborate(self, platform):
        m = Module()
        row, col, beat = self.row, self.col, self.beat
        m.d.comb += [
            self.first.eq((row == 0) & (col == 0) & (beat == 0)),
            self.last.eq((row == self.last_row) & (col == self.last_col) &
                         (beat == self.last_beat)),
        ]
        with m.If(self.advance):
            with m.If(self.last):
                m.d.sync += [row.eq(0), col.eq(0), beat.eq(0)]
            with m.Elif(beat != self.last_beat):
                m.d.sync += beat.eq(beat + 1)
            with m.Else():
                m.d.sync += beat.eq(0)
                with m.If(col != self.last_col):
                    m.d.sync += col.eq(col + 1)
                with m.Else():
                    m.d.sync += [col.eq(0), row.eq(row + 1)]
        return m
