"""Activation store: two on-chip buffers that hold the maps between the network's layers.

Each buffer is one memory of ``L``-byte words (a beat of the activation streams). A layer reads
one buffer from word 0 up (``read``, then the ``o`` stream) while the layer's output (after any
pool) is written to the other from word 0 up (``write``, then the ``i`` stream). Maps are in
raster order with each pixel's channels in whole beats, exactly as the engine's streams carry
them, so no address arithmetic beyond a counter is needed.
"""

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.blocks.layouts import beat_layout
from hw.blocks.params import check_int

__all__ = ["ActivationStore"]


class ActivationStore(wiring.Component):
    """Two buffers, one read stream and one write stream.

    Throughput: one word per cycle out (``o``) and one in (``i``, always ready). Latency: the
    first word of a read is on ``o`` two cycles after the ``read`` pulse; a word taken on ``i``
    can be read from the next cycle.

    Parameters
    ----------
    channels_per_beat : int
        L, bytes per word.
    words : (int, int)
        Depth of buffer 0 and buffer 1.

    Members
    -------
    read : In(1)
        Pulse: stream words ``0 .. read_words - 1`` of buffer ``read_buffer`` out on ``o``.
    read_buffer : In(1); read_words : In(range(max(words) + 1))
        Steady while the read runs.
    o : Out(stream.Signature(beat_layout(L)))
        ``first``/``last`` are 0 (the engine ignores them).
    write : In(1)
        Pulse: the next words on ``i`` go to buffer ``write_buffer`` from word 0 up.
    write_buffer : In(1)
    i : In(stream.Signature(beat_layout(L)))
        Always ready; ``last`` ends the write and sets ``written``.
    written : Out(1)
        The word with ``last`` was stored (cleared by ``write``).
    """

    def __init__(self, *, channels_per_beat, words):
        check_int("Channels per beat", channels_per_beat, 1, 64)
        words = tuple(words)
        if len(words) != 2:
            raise ValueError(f"The store has two buffers, not {len(words)}")
        for n in words:
            check_int("Buffer depth", n, 1, 1 << 24)
        self._beat, self._words = channels_per_beat, words
        super().__init__({
            "read": In(1),
            "read_buffer": In(1),
            "read_words": In(range(max(words) + 1)),
            "o": Out(stream.Signature(beat_layout(channels_per_beat))),
            "write": In(1),
            "write_buffer": In(1),
            "i": In(stream.Signature(beat_layout(channels_per_beat))),
            "written": Out(1),
        })

    @property
    def bits(self):
        return sum(self._words) * 8 * self._beat

    def elaborate(self, platform):
        m = Module()
        L = self._beat
        ports = []
        for k, depth in enumerate(self._words):
            mem = Memory(shape=unsigned(8 * L), depth=depth, init=[])
            m.submodules[f"buffer{k}"] = mem
            ports.append((mem.read_port(), mem.write_port()))

        # Reader: the read port (with enable) is the output register of the o stream.
        r_addr = Signal(range(max(self._words) + 1))
        r_active = Signal()
        advance = Signal()
        m.d.comb += advance.eq(~self.o.valid | self.o.ready)
        for k, (rd, _) in enumerate(ports):
            m.d.comb += [rd.addr.eq(r_addr), rd.en.eq(advance)]
        m.d.comb += self.o.payload.data.eq(
            Mux(self.read_buffer, ports[1][0].data, ports[0][0].data))
        with m.If(advance):
            m.d.sync += self.o.valid.eq(r_active & (r_addr < self.read_words))
            with m.If(r_active & (r_addr < self.read_words)):
                m.d.sync += r_addr.eq(r_addr + 1)
            with m.Else():
                m.d.sync += r_active.eq(0)
        with m.If(self.read):
            m.d.sync += [r_addr.eq(0), r_active.eq(1), self.o.valid.eq(0)]

        # Writer: a counter; always ready.
        w_addr = Signal(range(max(self._words) + 1))
        take = self.i.valid
        m.d.comb += self.i.ready.eq(1)
        for k, (_, wr) in enumerate(ports):
            m.d.comb += [wr.addr.eq(w_addr), wr.data.eq(self.i.payload.data),
                         wr.en.eq(take & (self.write_buffer == k))]
        with m.If(take):
            m.d.sync += w_addr.eq(w_addr + 1)
            with m.If(self.i.payload.last):
                m.d.sync += self.written.eq(1)
        with m.If(self.write):
            m.d.sync += [w_addr.eq(0), self.written.eq(0)]
        return m
