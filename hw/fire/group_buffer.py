"""What the input loader and the output drainer share: a block RAM of two slots of pixel
groups (one word of P bytes per channel, ``slot * channels + channel``) and the two ``full``
flags that pass the slots between producer and consumer."""

from amaranth.hdl import unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory

from hw.blocks.params import check_int, check_power_of_two

__all__ = ["GroupBuffer"]


class GroupBuffer(wiring.Component):
    """Base of :class:`~hw.fire.input_loader.InputLoader` and
    :class:`~hw.fire.output_drainer.OutputDrainer`; not used alone.

    Parameters
    ----------
    members : dict
        The subclass's ports (it must have ``full``).
    lanes : int
        P, pixels per group (a power of two).
    channels_per_beat : int
        L, channels per beat of the stream side.
    channels : int
        Words per slot: a power of two at least the largest ``beats * L`` of any run.
    """

    def __init__(self, members, *, lanes, channels_per_beat, channels):
        self._lanes, self._beat, self._channels = lanes, channels_per_beat, channels
        super().__init__(members)

    @staticmethod
    def check_parameters(lanes, channels_per_beat, channels):
        """Raise ``TypeError``/``ValueError`` unless these are valid parameters."""
        check_power_of_two("Lane count", lanes)
        check_power_of_two("Channel count", channels)
        check_int("Channels per beat", channels_per_beat, 1, channels)

    @property
    def lanes(self):
        return self._lanes

    @property
    def slot_channels(self):
        return self._channels

    def _buffer(self, m, *, granularity=None):
        """The two-slot memory as ``m.submodules.buffer``: (read port, write port)."""
        P = self._lanes
        m.submodules.buffer = buf = Memory(shape=unsigned(8 * P), depth=2 * self._channels,
                                           init=[])
        wr = buf.write_port(granularity=granularity) if granularity else buf.write_port()
        return buf.read_port(), wr

    def _slot_flags(self, m, fill, release):
        """``full`` bit s: set by a ``fill`` pulse, cleared by a ``release`` pulse of slot s."""
        m.d.sync += self.full.eq((self.full | fill) & ~release)
