"""Activation store: one circular on-chip buffer that holds the maps between the network's layers.

The buffer is one memory of ``L``-byte words (a beat of the activation streams), addressed
modulo its depth ``N``. A layer reads its input map from ``read_base`` on (``read``, then the
``o`` stream) while its output (after any pool) is written from ``write_base`` on (``write``,
then the ``i`` stream), both wrapping at ``N``. Maps are in raster order with each pixel's
channels in whole beats, exactly as the engine's streams carry them.

Why one buffer is enough (half of ping-pong): the output is placed right after the input,
``write_base = read_base + in_words (mod N)``. The engine never writes an output pixel before
it has read that pixel's input, so when ``w`` output pixels of ``bo`` words have been written,
``r >= w`` input pixels of ``bi`` words have been read, and the written words
(``in_words + w*bo`` past ``read_base``) stay below the first unread one plus ``N``
(``r*bi + N``) whenever ``N >= max(in_words, out_words)`` of every layer:
``w*bo - r*bi <= max(0, n*(bo - bi)) <= N - in_words`` for ``r <= n`` input pixels.
"""

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.blocks.layouts import beat_layout
from hw.blocks.params import check_int

__all__ = ["ActivationStore"]


class ActivationStore(wiring.Component):
    """One circular buffer, one read stream and one write stream.

    Throughput: one word per cycle out (``o``) and one in (``i``, always ready). Latency: the
    first word of a read is on ``o`` two cycles after the ``read`` pulse; a word taken on ``i``
    can be read from the next cycle.

    Parameters
    ----------
    channels_per_beat : int
        L, bytes per word.
    words : int
        N, the depth of the buffer.

    Members
    -------
    read : In(1)
        Pulse: stream ``read_words`` words from ``read_base`` on (wrapping) out on ``o``.
    read_base, read_words : In(range(N + 1))
        Steady while the read runs.
    o : Out(stream.Signature(beat_layout(L)))
        ``first``/``last`` are 0 (the engine ignores them).
    write : In(1)
        Pulse: the next words on ``i`` go from ``write_base`` on (wrapping).
    write_base : In(range(N))
    i : In(stream.Signature(beat_layout(L)))
        Always ready; ``last`` ends the write and sets ``written``.
    written : Out(1)
        The word with ``last`` was stored (cleared by ``write``).
    """

    def __init__(self, *, channels_per_beat, words):
        check_int("Channels per beat", channels_per_beat, 1, 64)
        check_int("Buffer depth", words, 1, 1 << 24)
        self._beat, self._words = channels_per_beat, words
        super().__init__({
            "read": In(1),
            "read_base": In(range(words)),
            "read_words": In(range(words + 1)),
            "o": Out(stream.Signature(beat_layout(channels_per_beat))),
            "write": In(1),
            "write_base": In(range(words)),
            "i": In(stream.Signature(beat_layout(channels_per_beat))),
            "written": Out(1),
        })

    def _step(self, addr):
        """``addr + 1`` modulo the depth."""
        return Mux(addr == self._words - 1, 0, addr + 1)

    def elaborate(self, platform):
        m = Module()
        N = self._words
        m.submodules.buffer = mem = Memory(shape=unsigned(8 * self._beat), depth=N, init=[])
        rd, wr = mem.read_port(), mem.write_port()

        # Reader: the read port (with enable) is the output register of the o stream.
        r_addr = Signal(range(N))
        r_left = Signal(range(N + 1))
        advance = Signal()
        m.d.comb += [advance.eq(~self.o.valid | self.o.ready),
                     rd.addr.eq(r_addr), rd.en.eq(advance),
                     self.o.payload.data.eq(rd.data)]
        with m.If(advance):
            m.d.sync += self.o.valid.eq(r_left != 0)
            with m.If(r_left != 0):
                m.d.sync += [r_addr.eq(self._step(r_addr)), r_left.eq(r_left - 1)]
        with m.If(self.read):
            m.d.sync += [r_addr.eq(self.read_base), r_left.eq(self.read_words),
                         self.o.valid.eq(0)]

        # Writer: an address that wraps; always ready.
        w_addr = Signal(range(N))
        m.d.comb += [self.i.ready.eq(1), wr.addr.eq(w_addr), wr.data.eq(self.i.payload.data),
                     wr.en.eq(self.i.valid)]
        with m.If(self.i.valid):
            m.d.sync += w_addr.eq(self._step(w_addr))
            with m.If(self.i.payload.last):
                m.d.sync += self.written.eq(1)
        with m.If(self.write):
            m.d.sync += [w_addr.eq(self.write_base), self.written.eq(0)]
        return m
