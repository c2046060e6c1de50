"""Max-pool 3x3 stride 2, Caffe ceil mode, on the engine's output stream.

Two :class:`~hw.network.pool_stage.PoolStage` in a row: the first pools each row's pixels
(lines of ``beats`` beats, ``width`` of them), the second pools the rows of the half-width map
(lines of ``out_width * beats`` beats, ``height`` of them). Only the pooled map leaves, so the
activation store never holds the unpooled one. Equal to ``golden.fixed.maxpool3x3s2``.
"""

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out, connect, flipped

from hw.blocks.layouts import beat_layout
from hw.blocks.params import check_int
from hw.network.pool_stage import PoolStage

__all__ = ["MaxPool", "pooled_size"]


def pooled_size(size):
    """Output size of a 3-wide, stride-2, ceil-mode pool over ``size`` (at least 3)."""
    return -(-(size - 3) // 2) + 1


class MaxPool(wiring.Component):
    """Streaming 3x3/2 ceil-mode max-pool of maps of up to ``max_width`` x ``max_beats`` beats.

    Throughput one input beat every three cycles (each stage is a read-modify-write with its
    read registered; the engine's drainer sends a beat every L >= 3 cycles in a network, whose
    image needs three channels per beat). Latency: a pooled beat leaves six cycles after the
    input beat that completes it, when ``o`` is ready.

    Parameters
    ----------
    channels_per_beat : int
    max_width : int
        Widest input map.
    max_beats : int
        Most beats per pixel.

    Members
    -------
    i : In(stream.Signature(beat_layout(L)))
        The map in raster order, ``first`` on the first beat of a run.
    o : Out(stream.Signature(beat_layout(L)))
        The pooled map in raster order, ``first``/``last`` framed.
    height, width : In(16)
        Input size, each at least 3; steady during a run.
    beats : In(range(max_beats + 1))
        Beats per pixel.
    row_beats : In(range(pooled_size(max_width) * max_beats + 1))
        ``pooled_size(width) * beats`` (a descriptor constant, so no multiplier is needed).
    """

    #: Cycles from the input beat that completes a pooled beat to that beat's transfer.
    LATENCY = 6

    def __init__(self, *, channels_per_beat, max_width, max_beats):
        check_int("Width", max_width, 3)
        check_int("Beat count", max_beats, 1)
        check_int("Channels per beat", channels_per_beat, 1, 64)
        self._beat, self._max_width, self._max_beats = channels_per_beat, max_width, max_beats
        super().__init__({
            "i": In(stream.Signature(beat_layout(channels_per_beat))),
            "o": Out(stream.Signature(beat_layout(channels_per_beat))),
            "height": In(16),
            "width": In(16),
            "beats": In(range(max_beats + 1)),
            "row_beats": In(range(pooled_size(max_width) * max_beats + 1)),
        })

    def elaborate(self, platform):
        m = Module()
        L, max_beats = self._beat, self._max_beats
        m.submodules.pixels = pixels = PoolStage(channels_per_beat=L, max_words=max_beats)
        m.submodules.rows = rows = PoolStage(
            channels_per_beat=L, max_words=pooled_size(self._max_width) * max_beats)
        connect(m, flipped(self.i), pixels.i)
        connect(m, pixels.o, rows.i)
        connect(m, rows.o, flipped(self.o))
        m.d.comb += [
            pixels.length.eq(self.width), pixels.words.eq(self.beats),
            rows.length.eq(self.height), rows.words.eq(self.row_beats),
        ]
        return m
