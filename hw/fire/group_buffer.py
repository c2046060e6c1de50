"""What the input loader and the output drainer share: a block RAM of two slots of pixel
groups (one word of P bytes per channel, ``slot * channels + channel``) and the two ``full``
flags that pass the slots between producer and consumer.

With W channels per cycle (``channels_per_cycle``) the RAM is W banks of ``P / W`` bytes, skewed
so that both sides touch every bank once per cycle: channel ``c`` of lane ``k`` is byte
``k // W`` of bank ``(k + c) mod W``, at word ``slot * channels + c``. W channels of one pixel
(the stream side) then lie in W different banks, and one channel of all P pixels (the lane side)
is word ``c`` of every bank, its lanes rotated by ``c mod W`` within each run of W lanes. The
banks have the aspect of the one-bank RAM, so they take no more block RAM.
"""

from amaranth.hdl import Array, Cat, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.utils import ceil_log2

from hw.blocks.params import check_int, check_lanes, check_power_of_two

__all__ = ["GroupBuffer"]


class GroupBuffer(wiring.Component):
    """Base of :class:`~hw.fire.input_loader.InputLoader` and
    :class:`~hw.fire.output_drainer.OutputDrainer`; not used alone.

    Parameters
    ----------
    members : dict
        The subclass's ports (it must have ``full``).
    lanes : int
        P, pixels per group (1, 2, 4 or a multiple of 8).
    channels_per_beat : int
        L, channels per beat of the stream side.
    channels : int
        Words per slot: a power of two at least the largest ``beats * L`` of any run.
    channels_per_cycle : int
        W, channels of one pixel moved per cycle on the stream side: a power of two that
        divides L and P.
    """

    def __init__(self, members, *, lanes, channels_per_beat, channels, channels_per_cycle=1):
        self._lanes, self._beat, self._channels = lanes, channels_per_beat, channels
        self._per_cycle = channels_per_cycle
        super().__init__(members)

    @staticmethod
    def check_parameters(lanes, channels_per_beat, channels, channels_per_cycle=1):
        """Raise ``TypeError``/``ValueError`` unless these are valid parameters."""
        check_lanes(lanes)
        check_power_of_two("Channel count", channels)
        check_int("Channels per beat", channels_per_beat, 1, channels)
        check_power_of_two("Channels per cycle", channels_per_cycle)
        if channels_per_beat % channels_per_cycle or lanes % channels_per_cycle:
            raise ValueError(f"Channels per cycle must divide the channels per beat "
                             f"({channels_per_beat}) and the lane count ({lanes}), "
                             f"not {channels_per_cycle!r}")

    @property
    def lanes(self):
        return self._lanes

    @property
    def slot_channels(self):
        return self._channels

    @property
    def channels_per_cycle(self):
        return self._per_cycle

    def _buffer(self, m, *, granularity=None):
        """The two-slot memory as ``m.submodules.buffer``: (read port, write port)."""
        P = self._lanes
        m.submodules.buffer = buf = Memory(shape=unsigned(8 * P), depth=2 * self._channels,
                                           init=[])
        wr = buf.write_port(granularity=granularity) if granularity else buf.write_port()
        return buf.read_port(), wr

    def _banks(self, m, *, granularity=None):
        """The W skewed banks (``m.submodules.bank0`` ...): a list of their memories."""
        width = 8 * self._lanes // self._per_cycle
        banks = []
        for b in range(self._per_cycle):
            banks.append(Memory(shape=unsigned(width), depth=2 * self._channels, init=[]))
            m.submodules[f"bank{b}"] = banks[-1]
        return banks

    def _lane_word(self, m, words, shift, name):
        """All P lanes' bytes from the banks' ``words`` (bank order) holding one channel
        ``c`` with ``shift = c mod W``: lane ``W*j + r`` is byte j of bank ``(r + c) mod W``."""
        W = self._per_cycle
        lanes = [None] * self._lanes
        for r in range(W):
            picked = Signal(len(words[0]), name=f"{name}_r{r}")
            m.d.comb += picked.eq(Array(words)[(shift + r)[:ceil_log2(W)]])
            for j in range(self._lanes // W):
                lanes[W * j + r] = picked.word_select(j, 8)
        return Cat(*lanes)

    def _bank_words(self, m, lane_word, shift, name):
        """The inverse of :meth:`_lane_word`: the word each bank stores for a channel of all
        lanes ``lane_word`` with ``shift = c mod W``."""
        W = self._per_cycle
        runs = [Cat(*(lane_word.word_select(W * j + r, 8) for j in range(self._lanes // W)))
                for r in range(W)]
        words = []
        for b in range(W):
            word = Signal(len(runs[0]), name=f"{name}_b{b}")
            m.d.comb += word.eq(Array(runs)[(b - shift)[:ceil_log2(W)]])
            words.append(word)
        return words

    def _slot_flags(self, m, fill, release):
        """``full`` bit s: set by a ``fill`` pulse, cleared by a ``release`` pulse of slot s."""
        m.d.sync += self.full.eq((self.full | fill) & ~release)
