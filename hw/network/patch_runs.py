"""Run patch streamer: the patch streamer's job, a whole kernel row of one channel per cycle.

Like :class:`~hw.network.patch_streamer.PatchStreamer` it turns an image stream into one patch
per output pixel of a K x K, stride-S convolution without padding, but it reads a *run* (the K
pixels ``kx = 0..K-1`` of one kernel row ``ky`` and one channel ``c``) per cycle instead of a
byte. Each run takes ``Q`` bytes of the patch, Q the power of two at least K, its last
``Q - K`` bytes zero: patch channel ``(c*K + ky)*Q + kx`` is pixel ``(S*yo + ky, S*xo + kx)``,
channel ``c`` (:func:`run_layout` maps conv1's weights to it). A beat holds ``L / Q`` runs.

The last ``R = K + S`` image rows live in two memories, the even and the odd words of each row,
a word being Q consecutive pixels of all C channels (channel c in bytes ``c*Q .. c*Q + Q - 1``).
A run starting at column ``x`` lies in words ``x // Q`` and ``x // Q + 1``, one in each memory,
so one read of both gives it; a shift by ``x mod Q`` bytes picks it out.
"""

from amaranth.hdl import Array, Cat, Module, Mux, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from hw.blocks.layouts import beat_layout
from hw.blocks.params import check_int
from hw.network.patch_streamer import RowCursor

__all__ = ["PatchRunStreamer", "run_bytes", "run_layout", "run_conv", "patch_streamer"]


def run_bytes(kernel):
    """Q: the bytes a run of ``kernel`` pixels takes in a patch."""
    return 1 << ceil_log2(kernel)


def run_layout(kernel, channels):
    """Patch channel of each ``(c, ky, kx)`` in the order of a ``(out, in, kh, kw)`` kernel's
    flattened weights: a list of ``C*K*K`` channels out of ``C*K*Q``."""
    q = run_bytes(kernel)
    return [(c * kernel + ky) * q + kx for c in range(channels) for ky in range(kernel)
            for kx in range(kernel)]


def run_conv(conv):
    """``conv`` (a ``golden.fixed.QConv``, K x K over C channels) as the 1x1 convolution over
    the run streamer's ``C*K*Q`` patch channels: the same entries at their new positions, with
    fillers wherever a gap grows past 16."""
    import dataclasses

    import numpy as np

    from golden.codec import encode_positions, entry_positions
    from golden.network import Conv

    spec = conv.spec
    K, C, O = spec.kernel, spec.in_channels, spec.out_channels
    layout = np.asarray(run_layout(K, C), np.int64)
    positions = entry_positions(conv.rel)
    per_channel = C * K * K
    moved = positions // per_channel * (C * K * run_bytes(K)) + layout[positions % per_channel]
    codes, rel = encode_positions(moved, np.asarray(conv.codes, np.uint8))
    return dataclasses.replace(conv, spec=Conv(spec.name, O, C * K * run_bytes(K), 1),
                               codes=codes, rel=rel)


def patch_streamer(program):
    """The patch streamer a :class:`~hw.network.program.NetworkProgram` asks for: the run
    streamer when its patches are in runs (``program.patch_runs``), else the byte one."""
    from hw.network.patch_streamer import PatchStreamer
    from hw.network.program import IMAGE_CHANNELS
    cls = PatchRunStreamer if program.patch_runs else PatchStreamer
    return cls(kernel=program.patch_kernel, stride=program.patch_stride, channels=IMAGE_CHANNELS,
               channels_per_beat=program.channels_per_beat, max_width=program.input_size)


class PatchRunStreamer(wiring.Component):
    """Image pixels in, patches of ``C*K`` runs out, raster order, both as beats of L bytes.

    Throughput: a beat of ``L / Q`` runs every ``L / Q + 2`` cycles while ``o`` is ready (one
    read of both row memories per run); an image beat per cycle while the row memory has room.
    Latency: output row ``yo`` starts once image row ``S*yo + K - 1`` is complete.

    Parameters
    ----------
    kernel, stride, channels, max_width : int
        K, S, C (at most L) and the widest image, as for
        :class:`~hw.network.patch_streamer.PatchStreamer`.
    channels_per_beat : int
        L, a multiple of Q.

    Members
    -------
    i, o, width, height, out_height, out_width
        As for :class:`~hw.network.patch_streamer.PatchStreamer`; a patch is
        ``ceil(C*K*Q / L)`` beats.
    """

    def __init__(self, *, kernel, stride, channels, channels_per_beat, max_width):
        check_int("Kernel", kernel, 1, 15)
        check_int("Stride", stride, 1, kernel)
        check_int("Channels per beat", channels_per_beat, 1, 64)
        check_int("Channel count", channels, 1, channels_per_beat)
        check_int("Width", max_width, kernel, 4096)
        if channels_per_beat % run_bytes(kernel):
            raise ValueError(f"Channels per beat must be a multiple of {run_bytes(kernel)} (a "
                             f"run of {kernel}), not {channels_per_beat}")
        self._k, self._s, self._c = kernel, stride, channels
        self._beat, self._max_width = channels_per_beat, max_width
        super().__init__({
            "i": In(stream.Signature(beat_layout(channels_per_beat))),
            "o": Out(stream.Signature(beat_layout(channels_per_beat))),
            "width": In(16),
            "height": In(16),
            "out_height": In(16),
            "out_width": In(16),
        })

    @property
    def patch_beats(self):
        """Beats per patch, ``ceil(C*K*Q / L)``."""
        return -(-self._c * self._k * run_bytes(self._k) // self._beat)

    def elaborate(self, platform):
        m = Module()
        K, S, C = self._k, self._s, self._c
        Q = run_bytes(K)
        R = K + S
        half = (-(-self._max_width // Q) + 2) // 2       # words of a row in each memory
        mems = []
        for parity in ("even", "odd"):
            mems.append(Memory(shape=unsigned(8 * C * Q), depth=R * half, init=[]))
            m.submodules[f"rows_{parity}"] = mems[-1]
        rows_in = Signal(16)               # image rows complete
        need = Signal(17, init=K)          # rows output row yo needs: S*yo + K
        free_below = Signal(17, init=R)    # rows below S*yo + R may be written
        running = Signal()                 # a run's patches are not all sent yet
        first = Signal(init=1)             # the next pixel is an image's first
        self._writer(m, mems, half, rows_in, free_below, running, first)
        self._reader(m, mems, half, rows_in, need, free_below, running, first)
        return m

    def _writer(self, m, mems, half, rows_in, free_below, running, first):
        """Image beats into the row memories, row ``y`` in slot ``y mod R``; a new image's first
        pixel waits until the last run's patches have all left."""
        R, C, Q = self._k + self._s, self._c, run_bytes(self._k)
        x = Signal(16)
        cursor = RowCursor("w", R, R * half)
        row_free = Mux(first, ~running, rows_in < free_below)
        word = Mux(first, 0, x[ceil_log2(Q):])
        onehot = Signal(Q)                 # the byte of its word the pixel takes
        m.d.comb += onehot.eq(Mux(first, 1, 1 << x[:ceil_log2(Q)]))
        pixel = self.i.payload.data.as_value()
        for parity, mem in enumerate(mems):
            wr = mem.write_port(granularity=8)
            m.d.comb += [
                wr.addr.eq(Mux(first, 0, cursor.base) + (word >> 1)),
                wr.data.eq(Cat(*(Cat(*([pixel.word_select(c, 8)] * Q)) for c in range(C)))),
                wr.en.eq(Mux(self.i.valid & self.i.ready & (word[0] == parity),
                             Cat(*([onehot] * C)), 0)),
            ]
        m.d.comb += self.i.ready.eq(row_free)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += first.eq(0)
            with m.If(first & (self.width == 1)):
                m.d.sync += [x.eq(0), rows_in.eq(1), cursor.slot.eq(1), cursor.base.eq(half),
                             first.eq(self.height == 1)]
            with m.Elif(first):
                m.d.sync += [x.eq(1), rows_in.eq(0)] + cursor.reset()
            with m.Elif(x + 1 == self.width):
                m.d.sync += [x.eq(0), rows_in.eq(rows_in + 1),
                             first.eq(rows_in + 1 == self.height)] + cursor.step(half)
            with m.Else():
                m.d.sync += x.eq(x + 1)

    def _reader(self, m, mems, half, rows_in, need, free_below, running, first):
        """Runs read one per cycle, packed into beats."""
        K, S, C, L = self._k, self._s, self._c, self._beat
        Q = run_bytes(K)
        qb = ceil_log2(Q)
        R = K + S
        runs = C * K
        padded = self.patch_beats * L // Q
        row0 = RowCursor("r0", R, R * half)    # slot of row S*yo
        rowk = RowCursor("rk", R, R * half)    # slot of row S*yo + ky
        c, ky = Signal(range(C)), Signal(range(K))
        n = Signal(range(padded + 1))          # patch run being issued
        xo, yo, col0 = Signal(16), Signal(16), Signal(16)
        issued = Signal(range(L // Q + 1))
        pend, pend_c, pend_pad = Signal(), Signal(range(C)), Signal()
        pend_off, pend_odd = Signal(range(Q)), Signal()
        beat = Signal(8 * L)
        steps = Signal(range(S + 1))
        sent_first = Signal()
        word = col0[qb:]
        even, odd = mems[0].read_port(), mems[1].read_port()
        m.d.comb += [even.addr.eq(rowk.base + ((word + 1) >> 1)),
                     odd.addr.eq(rowk.base + (word >> 1))]

        # Collect the run read last cycle (a padding run reads nothing).
        channel = [Array(mem.data.word_select(ch, 8 * Q) for ch in range(C))[pend_c]
                   for mem in (even, odd)]
        both = Signal(16 * Q)
        m.d.comb += both.eq(Mux(pend_odd, Cat(channel[1], channel[0]),
                                Cat(channel[0], channel[1])))
        run = Signal(8 * Q)
        m.d.comb += run.eq(Mux(pend_pad, 0, (both >> (pend_off * 8))[:8 * K]))
        with m.If(pend):
            m.d.sync += beat.eq(Cat(beat[8 * Q:], run) if L > Q else run)
        m.d.sync += pend.eq(0)
        with m.FSM():
            with m.State("WAIT"):
                with m.If(running & (rows_in >= need)):
                    m.d.sync += issued.eq(0)
                    m.next = "FILL"
            with m.State("FILL"):
                with m.If(issued < L // Q):
                    m.d.sync += [pend.eq(1), pend_c.eq(c), pend_pad.eq(n >= runs),
                                 pend_off.eq(col0[:qb]), pend_odd.eq(word[0]),
                                 issued.eq(issued + 1), n.eq(n + 1)]
                    with m.If(n < runs):
                        m.d.sync += [ky.eq(ky + 1)] + rowk.step(half)
                        with m.If(ky == K - 1):
                            m.d.sync += [ky.eq(0), c.eq(c + 1)] + rowk.copy(row0)
                with m.Else():
                    m.next = "SEND"
            with m.State("SEND"):
                last_beat = n == padded
                last_pixel = xo + 1 == self.out_width
                m.d.comb += [self.o.valid.eq(1), self.o.payload.data.eq(beat),
                             self.o.payload.first.eq(~sent_first),
                             self.o.payload.last.eq(last_beat & last_pixel &
                                                    (yo + 1 == self.out_height))]
                with m.If(self.o.ready):
                    m.d.sync += [issued.eq(0), sent_first.eq(1)]
                    m.next = "FILL"
                    with m.If(last_beat):
                        m.d.sync += [n.eq(0), c.eq(0), xo.eq(xo + 1), col0.eq(col0 + S)]
                        with m.If(last_pixel):
                            m.d.sync += [xo.eq(0), col0.eq(0), yo.eq(yo + 1), steps.eq(S),
                                         need.eq(need + S), free_below.eq(free_below + S)]
                            with m.If(yo + 1 == self.out_height):
                                m.d.sync += running.eq(0)
                            m.next = "NEXT_ROW"
            with m.State("NEXT_ROW"):
                # Move the row-0 cursor down S rows, one a cycle.
                with m.If(steps != 0):
                    m.d.sync += [steps.eq(steps - 1)] + row0.step(half)
                with m.Else():
                    m.d.sync += rowk.copy(row0)
                    m.next = "WAIT"
        # A new image restarts every counter (after the FSM, so that this wins over a
        # NEXT_ROW still stepping).
        with m.If(self.i.valid & self.i.ready & first):
            m.d.sync += [yo.eq(0), xo.eq(0), col0.eq(0), n.eq(0), c.eq(0), ky.eq(0),
                         running.eq(1), need.eq(K), free_below.eq(R), sent_first.eq(0)]
            m.d.sync += row0.reset() + rowk.reset()
