"""Logit packer: the global sum's 32-bit logits as a stream of L-byte beats.

A host link moves bytes, not logits: each logit leaves as its 4 little-endian bytes (two's
complement), the bytes of all logits packed in order into beats of ``L``, the last beat zero
padded. So ``C`` logits are ``ceil(4*C / L)`` beats, exactly what a layer of one pixel and
``4*C`` channels takes on the beat stream (:func:`model` is the byte image).
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
import numpy as np

from hw.blocks.layouts import beat_layout
from hw.blocks.params import check_int
from hw.network.global_sum import logit_layout

__all__ = ["LogitPacker", "model"]


def model(logits, channels_per_beat):
    """The beats (uint8, one row of L bytes each) that :class:`LogitPacker` sends for
    ``logits`` (signed 32-bit integers)."""
    raw = np.frombuffer(np.asarray(logits, "<i4").tobytes(), np.uint8)
    L = channels_per_beat
    padded = np.zeros(-(-raw.size // L) * L, np.uint8)
    padded[:raw.size] = raw
    return padded.reshape(-1, L)


class LogitPacker(wiring.Component):
    """Logits in, their little-endian bytes out in beats of L, ``first``/``last`` framed.

    Byte-serial (the link behind it is a UART): throughput one byte per cycle while ``o`` is
    ready, less one cycle per beat (a full beat waits in the output register for a cycle at
    least), so L bytes every L + 1 cycles and a logit every 4 cycles when L divides evenly.
    Latency: a beat is on ``o`` the cycle after its last byte was packed, i.e. the logit that
    completes it was taken 4 cycles before at the least (or fewer, for a beat that a logit's
    first bytes fill).

    Parameters
    ----------
    channels_per_beat : int
        L, bytes per beat (1 to 64).

    Members
    -------
    i : In(stream.Signature(logit_layout()))
        Logits, ``last`` on the run's last one. ``ready`` depends on no input of either stream.
    o : Out(stream.Signature(beat_layout(L)))
        ``first`` on the run's first beat, ``last`` on the beat with the last logit's last byte
        (zero padded after it). Runs follow each other without a gap.
    """

    def __init__(self, *, channels_per_beat):
        check_int("Channels per beat", channels_per_beat, 1, 64)
        self._beat = channels_per_beat
        super().__init__({
            "i": In(stream.Signature(logit_layout())),
            "o": Out(stream.Signature(beat_layout(channels_per_beat))),
        })

    @property
    def channels_per_beat(self):
        return self._beat

    def elaborate(self, platform):
        m = Module()
        L = self._beat
        word = Signal(32)                  # the logit being packed
        byte_index = Signal(2)             # its next byte
        held = Signal()                    # ``word`` has bytes left to pack
        final = Signal()                   # ``word`` is the run's last logit
        pos = Signal(range(L))             # next byte of the beat being built
        beat = Signal(8 * L)               # bytes packed so far, zeros above them
        sent = Signal()                    # a beat of this run has left

        # Pack only while the output register is empty: no path from ``o.ready`` to ``i.ready``.
        pack = Signal()
        m.d.comb += [pack.eq(held & ~self.o.valid),
                     self.i.ready.eq(~held | (pack & (byte_index == 3)))]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(pack):
            filled = Signal(8 * L)
            ends_run = (byte_index == 3) & final
            m.d.comb += [filled.eq(beat), filled.word_select(pos, 8).eq(word.word_select(
                byte_index, 8))]
            m.d.sync += byte_index.eq(byte_index + 1)
            with m.If(byte_index == 3):
                m.d.sync += held.eq(0)
            with m.If((pos == L - 1) | ends_run):
                m.d.sync += [self.o.valid.eq(1), self.o.payload.data.eq(filled),
                             self.o.payload.first.eq(~sent), self.o.payload.last.eq(ends_run),
                             sent.eq(~ends_run), beat.eq(0), pos.eq(0)]
            with m.Else():
                m.d.sync += [beat.eq(filled), pos.eq(pos + 1)]
        # After the packing above, so that a logit taken with the last byte of the previous
        # one wins over that byte's ``held.eq(0)``.
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [word.eq(self.i.payload.data), final.eq(self.i.payload.last),
                         held.eq(1), byte_index.eq(0)]
        return m
