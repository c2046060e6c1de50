"""A stand-in for the Fire engine behind the host link: same ports, a simple known function.

``StandInEngine`` computes :func:`stand_in_model` of each pixel with random stalls on both
streams and a few pixels of latency, so that input runs ahead of output as it does in the
real engine; the link tests then know every output byte without the golden model.
"""

import numpy as np
from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from hw.blocks.layouts import beat_layout, start_layout

__all__ = ["StandInEngine", "stand_in_model"]


def stand_in_model(x, e):
    """What ``StandInEngine`` outputs for input ``x`` (height, width, cin)."""
    cin = x.shape[2]
    s = (x.astype(np.int64) * np.arange(1, cin + 1)).sum(axis=2)[..., None] & 0xFFFF
    j = np.arange(e)
    return ((s + (j + 1) * (s >> 8) + 3 * j) & 0xFF).astype(np.uint8)


class StandInEngine(wiring.Component):
    """The Fire engine's ports around :func:`stand_in_model`.

    Per pixel it forms ``s = sum((c + 1) * x[c]) mod 2**16`` over the input channels and
    outputs ``y[j] = (s + (j + 1) * (s >> 8) + 3 * j) mod 256`` for ``j < e``, zero in the
    padding channels of the last beat. It holds ``lag`` pixels before answering (until the
    input ends), takes input on about 3 cycles in 4 and starts output beats on about 3 cycles
    in 4.
    ``bad`` rises and stays high if the input ``first`` / ``last`` framing is wrong.
    ``drop_last`` makes it omit ``last`` on its output, for the link's framing check.
    """

    def __init__(self, layers, channels_per_beat, *, lag=3, drop_last=False):
        self._layers = [tuple(layer)[:2] for layer in layers]     # (cin, e); any extra fields
        self._channels_per_beat = channels_per_beat
        self._lag = lag
        self._drop_last = drop_last
        super().__init__({
            "start": In(stream.Signature(start_layout())),
            "i": In(stream.Signature(beat_layout(channels_per_beat))),
            "o": Out(stream.Signature(beat_layout(channels_per_beat))),
            "done": Out(1),
            "bad": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        channels_per_beat = self._channels_per_beat
        in_beats = [-(-cin // channels_per_beat) for cin, _ in self._layers]
        out_beats = [-(-e // channels_per_beat) for _, e in self._layers]
        in_last_tab = Array(Const(b - 1, range(max(in_beats))) for b in in_beats)
        out_last_tab = Array(Const(b - 1, range(max(out_beats))) for b in out_beats)
        e_tab = Array(Const(e, 16) for _, e in self._layers)

        lfsr = Signal(16, init=0xACE1)
        m.d.sync += lfsr.eq(Cat(lfsr[1:], lfsr[0] ^ lfsr[2] ^ lfsr[3] ^ lfsr[5]))

        running = Signal()
        in_done = Signal()
        pixels = Signal(16)
        e = Signal(16)
        in_last = Signal(range(max(in_beats)))
        out_last = Signal(range(max(out_beats)))
        ipix = Signal(16)
        ibeat = Signal(range(max(in_beats)))
        acc = Signal(16)
        opix = Signal(16)
        obeat = Signal(range(max(out_beats)))
        cur = Signal(16)
        have = Signal()

        m.submodules.sums = sums = SyncFIFOBuffered(width=16, depth=self._lag + 1)

        m.d.comb += self.start.ready.eq(~running)
        with m.If(self.start.valid & self.start.ready):
            p = self.start.payload
            m.d.sync += [
                running.eq(1), in_done.eq(0), have.eq(0),
                pixels.eq(p.height * p.width), e.eq(e_tab[p.layer]),
                in_last.eq(in_last_tab[p.layer]), out_last.eq(out_last_tab[p.layer]),
                ipix.eq(0), ibeat.eq(0), acc.eq(0), opix.eq(0), obeat.eq(0),
            ]

        lane = [self.i.payload.data[n] for n in range(channels_per_beat)]
        plain = sum(lane)
        weighted = sum(v * (n + 1) for n, v in enumerate(lane))
        acc_next = (acc + weighted + ibeat * channels_per_beat * plain)[:16]
        last_beat = ibeat == in_last
        exp_first = (ipix == 0) & (ibeat == 0)
        exp_last = (ipix == pixels - 1) & last_beat
        m.d.comb += self.i.ready.eq(running & ~in_done & sums.w_rdy & (lfsr[0] | lfsr[1]))
        with m.If(self.i.valid & self.i.ready):
            with m.If((self.i.payload.first != exp_first) | (self.i.payload.last != exp_last)):
                m.d.sync += self.bad.eq(1)
            with m.If(last_beat):
                m.d.comb += [sums.w_en.eq(1), sums.w_data.eq(acc_next)]
                m.d.sync += [acc.eq(0), ibeat.eq(0), ipix.eq(ipix + 1)]
                with m.If(ipix == pixels - 1):
                    m.d.sync += in_done.eq(1)
            with m.Else():
                m.d.sync += [acc.eq(acc_next), ibeat.eq(ibeat + 1)]

        with m.If(~have & sums.r_rdy & ((sums.level > self._lag) | in_done)):
            m.d.comb += sums.r_en.eq(1)
            m.d.sync += [cur.eq(sums.r_data), have.eq(1), obeat.eq(0)]

        m.d.sync += self.done.eq(0)
        with m.If(have & ~self.o.valid & (lfsr[2] | lfsr[3])):
            for n in range(channels_per_beat):
                j = obeat * channels_per_beat + n
                value = (cur + (j + 1) * cur[8:] + 3 * j)[:8]
                m.d.sync += self.o.payload.data[n].eq(Mux(j < e, value, 0))
            last = (opix == pixels - 1) & (obeat == out_last)
            m.d.sync += [
                self.o.valid.eq(1),
                self.o.payload.first.eq((opix == 0) & (obeat == 0)),
                self.o.payload.last.eq(last if not self._drop_last else 0),
            ]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
            with m.If(obeat == out_last):
                m.d.sync += [have.eq(0), opix.eq(opix + 1)]
                with m.If(opix == pixels - 1):
                    m.d.sync += [running.eq(0), self.done.eq(1)]
            with m.Else():
                m.d.sync += obeat.eq(obeat + 1)
        return m
