"""Patch streamer: turns an image stream into one K*K*C-channel patch per output pixel of a
K x K, stride-S convolution without padding (conv1 of SqueezeNet: v1.0 7x7/2, v1.1 3x3/2).

The engine then runs conv1 as a 1x1 convolution over ``K*K*C`` input channels, skipping zero
weights like any other layer. Patch channel ``j = c*K*K + ky*K + kx`` is pixel
``(S*yo + ky, S*xo + kx)``, channel ``c``: the order of the weights of a ``(out, in, kh, kw)``
kernel, so the stored entries of conv1 are used unchanged.

The last ``R = K + S`` image rows live in a row memory (one word of C bytes per pixel, row
``y`` in slot ``y mod R``): while the K rows of output row ``yo`` are read, the next S rows can
arrive. No multiplier: slot bases move by adding the width.

Each row-memory read is registered straight out of the RAM (on the ECP5 the block RAM's own
output register, :mod:`hw.flow.outreg`) and collected into the beat a cycle later; the beat's
last read goes out in the first cycle of the beat's offer without waiting for the beat
register, so throughput and latency are those of an unregistered read. The unregistered row
memory into the beat register was the 32-lane ULX3S build's critical path (88.2 MHz:
5.8 ns of the RAM's clock-to-out, 4.3 ns of routing; 2026-12-04).
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.blocks.layouts import beat_layout
from hw.blocks.params import check_int
from hw.blocks.signals import delay

__all__ = ["PatchStreamer"]


class RowCursor:
    """A row slot and its first word address, stepped one row at a time modulo R rows."""

    def __init__(self, name, rows, depth):
        self.slot = Signal(range(rows), name=f"{name}_slot")
        self.base = Signal(range(depth), name=f"{name}_base")
        self._rows = rows

    def reset(self):
        return [self.slot.eq(0), self.base.eq(0)]

    def copy(self, other):
        return [self.slot.eq(other.slot), self.base.eq(other.base)]

    def step(self, width):
        last = self.slot == self._rows - 1
        return [self.slot.eq(Mux(last, 0, self.slot + 1)),
                self.base.eq(Mux(last, 0, self.base + width))]


class PatchStreamer(wiring.Component):
    """Image pixels in, K*K*C-byte patches out, raster order, both as beats of L bytes.

    Throughput: L patch bytes every L + 1 cycles while ``o`` is ready (one row-memory read per
    byte); an image beat per cycle while the row memory has room. Latency: output row ``yo``
    starts once image row ``S*yo + K - 1`` is complete.

    Parameters
    ----------
    kernel, stride : int
        K and S.
    channels : int
        C, image channels (3), at most L: one image beat per pixel.
    channels_per_beat : int
        L.
    max_width : int
        Widest image.

    Members
    -------
    i : In(stream.Signature(beat_layout(L)))
        Image pixels in raster order, C channels in the first bytes of each beat. Images follow
        each other: after ``height`` rows the next pixel starts a new image (once the last
        run's patches have all left). ``first``/``last`` are ignored, and ``ready`` depends on
        no input of the stream.
    o : Out(stream.Signature(beat_layout(L)))
        Patches in raster order of output pixels, ``ceil(K*K*C/L)`` beats each (zero padded),
        ``first``/``last`` on the run's first/last beat.
    width, height : In(16)
        Image size; steady during a run.
    out_height, out_width : In(16)
        ``(H - K) // S + 1`` and ``(W - K) // S + 1`` (descriptor constants).
    """

    def __init__(self, *, kernel, stride, channels, channels_per_beat, max_width):
        check_int("Kernel", kernel, 1, 15)
        check_int("Stride", stride, 1, kernel)
        check_int("Channels per beat", channels_per_beat, 1, 64)
        check_int("Channel count", channels, 1, channels_per_beat)
        check_int("Width", max_width, kernel, 4096)
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

    def _unit(self):
        """Bytes of a patch one row-memory read gives (the run streamer reads a kernel row)."""
        return 1

    @property
    def patch_beats(self):
        """Beats per patch, ``ceil(K*K*C / L)``."""
        return -(-self._k * self._k * self._c // self._beat)

    def elaborate(self, platform):
        m = Module()
        K, S = self._k, self._s
        R = K + S
        mems = self._memories(m)
        rows_in = Signal(16)               # image rows complete
        need = Signal(17, init=K)          # rows output row yo needs: S*yo + K
        free_below = Signal(17, init=R)    # rows below S*yo + R may be written
        running = Signal()                 # a run's patches are not all sent yet
        first = Signal(init=1)             # the next pixel is an image's first
        self._writer(m, mems, rows_in, free_below, running, first)
        self._reader(m, mems, rows_in, need, free_below, running, first)
        return m

    # What a streamer of other reads changes: its memories, the row stride, how a pixel is
    # written, how a read is addressed and what it gives.

    def _memories(self, m):
        """The row memory: one word of C bytes per pixel, row ``y`` in slot ``y mod R``."""
        R = self._k + self._s
        m.submodules.rows = rows = Memory(shape=unsigned(8 * self._c),
                                          depth=R * self._max_width, init=[])
        return [rows]

    def _stride(self):
        """Words between two row slots."""
        return self.width

    def _write(self, m, mems, base, x, first, en):
        """Write the pixel on ``i`` (column ``x`` of the row slot at ``base``)."""
        wr = mems[0].write_port()
        m.d.comb += [wr.addr.eq(Mux(first, 0, base + x)),
                     wr.data.eq(self.i.payload.data.as_value()[:8 * self._c]), wr.en.eq(en)]

    def _read(self, m, mems, base, col0, kx, c):
        """Address the read of patch byte ``(c, ky, kx)`` (``base``: row ky's slot); return
        ``(pending, collect)``: what to register at the issue (the registers hold it two cycles
        later) and the read's bytes from them and the registered read data, two cycles after
        the issue."""
        rd = mems[0].read_port()
        m.d.comb += rd.addr.eq(base + col0 + kx)
        pend_c = Signal(range(self._c))
        return [(pend_c, c)], delay(m, rd.data, 1, "rows_q").word_select(pend_c, 8)

    def _writer(self, m, mems, rows_in, free_below, running, first):
        """Image beats into the row memory, row ``y`` in slot ``y mod R``; a new image's first
        pixel waits until the last run's patches have all left."""
        R = self._k + self._s
        x = Signal(16)
        cursor = RowCursor("w", R, R * self._max_width)
        row_free = Mux(first, ~running, rows_in < free_below)
        m.d.comb += self.i.ready.eq(row_free)
        self._write(m, mems, cursor.base, x, first, self.i.valid & self.i.ready)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += first.eq(0)
            with m.If(first & (self.width == 1)):
                m.d.sync += [x.eq(0), rows_in.eq(1), cursor.slot.eq(1),
                             cursor.base.eq(self._stride()), first.eq(self.height == 1)]
            with m.Elif(first):
                m.d.sync += [x.eq(1), rows_in.eq(0)] + cursor.reset()
            with m.Elif(x + 1 == self.width):
                m.d.sync += [x.eq(0), rows_in.eq(rows_in + 1),
                             first.eq(rows_in + 1 == self.height)] + cursor.step(self._stride())
            with m.Else():
                m.d.sync += x.eq(x + 1)

    def _reader(self, m, mems, rows_in, need, free_below, running, first):
        """Patch reads (a byte, or a run of U bytes) one per cycle, packed into beats."""
        K, S, C, L, U = self._k, self._s, self._c, self._beat, self._unit()
        R = K + S
        total = K * K * C // (K if U > 1 else 1)     # reads of real patch bytes
        padded = self.patch_beats * L // U
        row0 = RowCursor("r0", R, R * self._max_width)    # slot of row S*yo
        rowk = RowCursor("rk", R, R * self._max_width)    # slot of row S*yo + ky
        c, ky, kx = Signal(range(C)), Signal(range(K)), Signal(range(K))
        n = Signal(range(padded + 1))          # patch read being issued
        xo, yo, col0 = Signal(16), Signal(16), Signal(16)
        issued = Signal(range(L // U + 1))
        pend, pend_pad = Signal(), Signal()    # a read issued last cycle, a padding read
        beat = Signal(8 * L)
        steps = Signal(range(S + 1))
        sent_first = Signal()
        pending, collect = self._read(m, mems, rowk.base, col0, kx, c)
        # What the issue decides, held a cycle, then in ``pending`` beside the registered data.
        issue = [Signal.like(reg, name=f"{reg.name}_i") for reg, _ in pending]
        m.d.sync += [reg.eq(held) for (reg, _), held in zip(pending, issue)]

        # Collect the read of two cycles ago (a padding read reads nothing). In the first
        # cycle of SEND the beat's last read is being collected: the beat goes out with it.
        pend_d = delay(m, pend, 1, "pend_d")          # the same a cycle later: its data is in
        got = Mux(delay(m, pend_pad, 1, "pend_pad_d"), 0, collect)
        collected = Cat(beat[8 * U:], got) if L > U else got
        with m.If(pend_d):
            m.d.sync += beat.eq(collected)
        m.d.sync += pend.eq(0)
        with m.FSM():
            with m.State("WAIT"):
                with m.If(running & (rows_in >= need)):
                    m.d.sync += issued.eq(0)
                    m.next = "FILL"
            with m.State("FILL"):
                with m.If(issued < L // U):
                    m.d.sync += [pend.eq(1), pend_pad.eq(n >= total),
                                 issued.eq(issued + 1), n.eq(n + 1)]
                    m.d.sync += [held.eq(value) for held, (_, value) in zip(issue, pending)]
                    with m.If(n < total):
                        m.d.sync += kx.eq(kx + 1)
                        row_end = Const(1) if U > 1 else kx == K - 1   # a run is a whole row
                        with m.If(row_end):
                            m.d.sync += [kx.eq(0), ky.eq(ky + 1)] + rowk.step(self._stride())
                            with m.If(ky == K - 1):
                                m.d.sync += [ky.eq(0), c.eq(c + 1)] + rowk.copy(row0)
                with m.Else():
                    m.next = "SEND"
            with m.State("SEND"):
                last_beat = n == padded
                last_pixel = xo + 1 == self.out_width
                m.d.comb += [self.o.valid.eq(1),
                             self.o.payload.data.eq(Mux(pend_d, collected, beat)),
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
                    m.d.sync += [steps.eq(steps - 1)] + row0.step(self._stride())
                with m.Else():
                    m.d.sync += rowk.copy(row0)
                    m.next = "WAIT"
        # A new image restarts every counter (after the FSM, so that this wins over a
        # NEXT_ROW still stepping).
        with m.If(self.i.valid & self.i.ready & first):
            m.d.sync += [yo.eq(0), xo.eq(0), col0.eq(0), n.eq(0), c.eq(0), ky.eq(0),
                         kx.eq(0), need.eq(K), free_below.eq(R), sent_first.eq(0),
                         running.eq(1)]
            m.d.sync += row0.reset() + rowk.reset()
        return m
