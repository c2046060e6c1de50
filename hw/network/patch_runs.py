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

from amaranth.hdl import Array, Cat, Mux, Signal, unsigned
from amaranth.lib.memory import Memory
from amaranth.utils import ceil_log2

from hw.blocks.signals import delay
from hw.network.patch_streamer import PatchStreamer

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
    from hw.network.program import IMAGE_CHANNELS
    cls = PatchRunStreamer if program.patch_runs else PatchStreamer
    return cls(kernel=program.patch_kernel, stride=program.patch_stride, channels=IMAGE_CHANNELS,
               channels_per_beat=program.channels_per_beat, max_width=program.input_size)


class PatchRunStreamer(PatchStreamer):
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
        super().__init__(kernel=kernel, stride=stride, channels=channels,
                         channels_per_beat=channels_per_beat, max_width=max_width)
        if channels_per_beat % run_bytes(kernel):
            raise ValueError(f"Channels per beat must be a multiple of {run_bytes(kernel)} (a "
                             f"run of {kernel}), not {channels_per_beat}")
        self._half = (-(-max_width // run_bytes(kernel)) + 2) // 2   # words per row and memory

    def _unit(self):
        return run_bytes(self._k)

    @property
    def patch_beats(self):
        """Beats per patch, ``ceil(C*K*Q / L)``."""
        return -(-self._c * self._k * run_bytes(self._k) // self._beat)

    def _memories(self, m):
        """The even and the odd words of every row slot, a word being Q pixels of C channels."""
        R, C, Q = self._k + self._s, self._c, run_bytes(self._k)
        mems = []
        for parity in ("even", "odd"):
            mems.append(Memory(shape=unsigned(8 * C * Q), depth=R * self._half, init=[]))
            m.submodules[f"rows_{parity}"] = mems[-1]
        return mems

    def _stride(self):
        return self._half

    def _write(self, m, mems, base, x, first, en):
        """Byte ``x mod Q`` of each channel's Q bytes of word ``x // Q``."""
        C, Q = self._c, run_bytes(self._k)
        word = Mux(first, 0, x[ceil_log2(Q):])
        onehot = Signal(Q)                 # the byte of its word the pixel takes
        m.d.comb += onehot.eq(Mux(first, 1, 1 << x[:ceil_log2(Q)]))
        pixel = self.i.payload.data.as_value()
        for parity, mem in enumerate(mems):
            wr = mem.write_port(granularity=8)
            m.d.comb += [
                wr.addr.eq(Mux(first, 0, base) + (word >> 1)),
                wr.data.eq(Cat(*(Cat(*([pixel.word_select(c, 8)] * Q)) for c in range(C)))),
                wr.en.eq(Mux(en & (word[0] == parity), Cat(*([onehot] * C)), 0)),
            ]

    def _read(self, m, mems, base, col0, kx, c):
        """Both memories at the words holding columns ``col0 .. col0 + K - 1``; two cycles
        later the run is shifted out of the two registered words of channel ``c``."""
        K, C, Q = self._k, self._c, run_bytes(self._k)
        word = col0[ceil_log2(Q):]
        even, odd = mems[0].read_port(), mems[1].read_port()
        m.d.comb += [even.addr.eq(base + ((word + 1) >> 1)), odd.addr.eq(base + (word >> 1))]
        pend_c, pend_off, pend_odd = Signal(range(C)), Signal(range(Q)), Signal()
        data = [delay(m, port.data, 1, f"{name}_q")
                for port, name in ((even, "even"), (odd, "odd"))]
        channel = [Array(word.word_select(ch, 8 * Q) for ch in range(C))[pend_c]
                   for word in data]
        both = Signal(16 * Q)
        m.d.comb += both.eq(Mux(pend_odd, Cat(channel[1], channel[0]),
                                Cat(channel[0], channel[1])))
        run = Signal(8 * Q)
        m.d.comb += run.eq((both >> (pend_off * 8))[:8 * K])
        return [(pend_c, c), (pend_off, col0[:ceil_log2(Q)]), (pend_odd, word[0])], run
