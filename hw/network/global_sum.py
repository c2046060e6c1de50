"""Global sum: adds every output pixel of a layer, per channel, into 32-bit logits.

SqueezeNet ends with a global average pool; the integer golden model
(``golden.fixed.global_sum``) keeps the sum, whose order is the same as the average's. The block
takes the activation stream of the last convolution (raster order, each pixel's channels in
``ceil(C/L)`` beats, ``first`` on the run's first beat and ``last`` on its last), keeps one sum
per channel in a memory of ``ceil(C/L)`` words of L sums, and after the run's last beat streams
the C sums out, one per transfer.

``offsets`` (one per channel) start the sums: conv10 of SqueezeNet v1.0 has padding 1, so the 56
border pixels of its 15x15 output are the requantised bias of each channel; the engine computes
the 13x13 interior, and ``56 * border`` is the offset.
"""

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
import numpy as np

from golden.fixed import requantize
from hw.blocks.layouts import beat_layout
from hw.blocks.params import check_int

__all__ = ["GlobalSum", "logit_layout", "padded_border_offsets"]


def padded_border_offsets(qconv, height, width):
    """Per-channel offsets that stand for the zero-padded border of a padded 1x1 convolution.

    A 1x1 convolution with padding ``p`` on an ``height x width`` map has ``(H+2p)(W+2p) - HW``
    border outputs that see only padding: each is ``requantize(bias, shift)``. The engine runs
    the interior; :class:`GlobalSum` starts each channel's sum at this offset.

    Parameters
    ----------
    qconv : golden ``QConv``
        A 1x1 convolution (``spec.pad`` may be 0: the offsets are then 0).
    height, width : int
        Size of the (unpadded) input map.
    """
    if qconv.spec.kernel != 1:
        raise ValueError(f"{qconv.name}: border offsets are for 1x1 convolutions, not "
                         f"{qconv.spec.kernel}x{qconv.spec.kernel}")
    pad = qconv.spec.pad
    border = (height + 2 * pad) * (width + 2 * pad) - height * width
    values = requantize(np.asarray(qconv.bias, np.int64), qconv.shift).astype(np.int64)
    return (border * values).tolist()


def logit_layout():
    """Payload of the logit stream: one signed 32-bit sum, ``last`` on the final channel."""
    return data.StructLayout({"data": signed(32), "last": 1})


class GlobalSum(wiring.Component):
    """Per-channel sum over all pixels of a run.

    Throughput: one input beat every two cycles (a read-modify-write of one memory word; the
    engine's drainer sends a beat every L >= 2 cycles). After the run's last beat: one logit per
    cycle while ``o`` is ready; ``i`` is not ready again until the last logit has left.
    Latency: the first logit is on ``o`` 3 cycles after the last input beat was taken.

    Parameters
    ----------
    channels : int
        C, channels per pixel (1 to 4096).
    channels_per_beat : int
        L, channels per beat of ``i`` (1 to 64).
    offsets : list of int or None
        Start value of each channel's sum (default 0), 32-bit signed.

    Members
    -------
    i : In(stream.Signature(beat_layout(L)))
    o : Out(stream.Signature(logit_layout()))
    """

    def __init__(self, *, channels, channels_per_beat, offsets=None):
        check_int("Channel count", channels, 1, 4096)
        check_int("Channels per beat", channels_per_beat, 1, 64)
        offsets = [0] * channels if offsets is None else [int(v) for v in offsets]
        if len(offsets) != channels:
            raise ValueError(f"Offsets must have one value per channel ({channels}), "
                             f"not {len(offsets)}")
        if any(not -(1 << 31) <= v < 1 << 31 for v in offsets):
            raise ValueError("Offsets must fit 32-bit signed")
        self._channels, self._beat = channels, channels_per_beat
        self._offsets = offsets
        super().__init__({
            "i": In(stream.Signature(beat_layout(channels_per_beat))),
            "o": Out(stream.Signature(logit_layout())),
        })

    @property
    def beats(self):
        """Beats per pixel, ``ceil(C/L)``."""
        return -(-self._channels // self._beat)

    def elaborate(self, platform):
        m = Module()
        C, L, B = self._channels, self._beat, self.beats
        padded = self._offsets + [0] * (B * L - C)
        words = [sum((v & 0xFFFF_FFFF) << (32 * j) for j, v in enumerate(padded[b * L:(b + 1) * L]))
                 for b in range(B)]
        m.submodules.offsets = offsets = Memory(shape=unsigned(32 * L), depth=B, init=words)
        m.submodules.sums = sums = Memory(shape=unsigned(32 * L), depth=B, init=[])
        off_rd = offsets.read_port()
        rd = sums.read_port()
        wr = sums.write_port()

        beat = Signal(range(B))            # word of the beat being added
        first_pixel = Signal()             # adding to the offsets, not the old sums
        held = Signal.like(self.i.payload)
        out_word = Signal(range(B + 1))
        out_lane = Signal(range(L))
        out_chan = Signal(range(C + 1))
        lanes = Signal(32 * L)
        m.d.comb += [rd.addr.eq(beat), off_rd.addr.eq(beat)]
        with m.FSM():
            with m.State("TAKE"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(self.i.valid):
                    m.d.sync += held.eq(self.i.payload)
                    with m.If(self.i.payload.first):
                        m.d.sync += [first_pixel.eq(1), beat.eq(0)]
                        m.d.comb += [rd.addr.eq(0), off_rd.addr.eq(0)]
                    m.next = "ADD"
            with m.State("ADD"):
                base = Signal(32 * L)
                m.d.comb += base.eq(Mux(first_pixel, off_rd.data, rd.data))
                total = [(base[32 * j:32 * j + 32] + held.data[j])[:32] for j in range(L)]
                m.d.comb += [wr.addr.eq(beat), wr.en.eq(1), wr.data.eq(Cat(*total))]
                m.d.sync += beat.eq(Mux(beat == B - 1, 0, beat + 1))
                with m.If(beat == B - 1):
                    m.d.sync += first_pixel.eq(0)
                with m.If(held.last):
                    m.d.sync += [out_word.eq(0), out_chan.eq(0)]
                    m.next = "READ"
                with m.Else():
                    m.next = "TAKE"
            with m.State("READ"):
                m.d.comb += rd.addr.eq(out_word)
                m.next = "LOAD"
            with m.State("LOAD"):
                m.d.sync += [lanes.eq(rd.data), out_lane.eq(0), out_word.eq(out_word + 1)]
                m.next = "SEND"
            with m.State("SEND"):
                m.d.comb += [
                    self.o.valid.eq(1),
                    self.o.payload.data.eq(lanes.word_select(out_lane, 32)),
                    self.o.payload.last.eq(out_chan == C - 1),
                ]
                with m.If(self.o.ready):
                    m.d.sync += [out_lane.eq(out_lane + 1), out_chan.eq(out_chan + 1)]
                    with m.If(out_chan == C - 1):
                        m.d.sync += beat.eq(0)
                        m.next = "TAKE"
                    with m.Elif(out_lane == L - 1):
                        m.next = "READ"
        return m
