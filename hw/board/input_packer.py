"""Packs the host's input bytes into the engine's beats."""

from amaranth.hdl import Cat, Module, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hw.blocks.layouts import beat_layout
from hw.board.raster import RasterCounter, check_max_beats

__all__ = ["InputPacker"]


class InputPacker(wiring.Component):
    """Input bytes to engine beats, framed over the whole layer, with credits and abort.

    While ``running`` and until the layer's last beat is transferred (``done``), the packer
    gathers ``channels_per_beat`` bytes from ``i`` into a beat (the first byte in channel 0),
    offers it on ``o`` with ``first`` / ``last`` set for its raster position, and takes the
    next byte only once ``o`` is empty again. It pulses ``credit`` each time another
    ``credit_chunk`` bytes have been taken (counted across layers, as the host counts them).

    After ``abort`` it feeds zeros instead of waiting for bytes (one per cycle), so the engine
    finishes the layer, and it takes and drops every byte arriving on ``i`` while ``running``.

    Parameters
    ----------
    channels_per_beat : int
        Bytes per beat, 1 to 255.
    max_beats : int
        Largest number of input beats per pixel of any layer, at least 1.
    credit_chunk : int
        Bytes per ``credit`` pulse, a power of two.

    Members
    -------
    begin : ``In(1)``
        A new layer starts: clear ``done``. ``last_*`` are steady from here to ``done``.
    running, abort : ``In(1)``
        Feed the engine; feed it zeros and drop input.
    last_row, last_col : ``In(8)``
    last_beat : ``In(range(max_beats))``
        ``height - 1``, ``width - 1`` and input beats per pixel minus one.
    i : ``In(stream.Signature(unsigned(8)))``
        Input bytes. ``ready`` does not depend on ``valid``.
    o : ``Out(stream.Signature(beat_layout(channels_per_beat)))``
        To the engine's ``i``.
    starving : ``Out(1)``
        The packer waits for an input byte (for the link's timeout).
    done : ``Out(1)``
        The layer's last beat has been transferred.
    credit : ``Out(1)``
        One-cycle pulse: another ``credit_chunk`` bytes taken from ``i`` (not while aborted).

    Latency: ``o.valid`` rises the cycle after the beat's last byte is taken; ``done`` rises
    the cycle after the last beat's transfer. Throughput: one byte per cycle while ``o`` is
    empty, so a beat costs ``channels_per_beat`` cycles plus one for its transfer.

    Raises
    ------
    TypeError
        If ``channels_per_beat``, ``max_beats`` or ``credit_chunk`` is not an integer.
    ValueError
        If ``channels_per_beat`` is not 1 to 255, ``max_beats`` is below 1 or
        ``credit_chunk`` is not a power of two.
    """

    def __init__(self, channels_per_beat, max_beats, credit_chunk):
        if not isinstance(channels_per_beat, int) or isinstance(channels_per_beat, bool):
            raise TypeError(f"Channels per beat must be an integer from 1 to 255, "
                            f"not {channels_per_beat!r}")
        if not 1 <= channels_per_beat <= 255:
            raise ValueError(f"Channels per beat must be an integer from 1 to 255, "
                             f"not {channels_per_beat!r}")
        if not isinstance(credit_chunk, int) or isinstance(credit_chunk, bool):
            raise TypeError(f"Credit chunk must be a power of two, not {credit_chunk!r}")
        if credit_chunk < 1 or credit_chunk & (credit_chunk - 1):
            raise ValueError(f"Credit chunk must be a power of two, not {credit_chunk!r}")
        self._channels_per_beat = channels_per_beat
        self._credit_chunk = credit_chunk
        self._max_beats = check_max_beats(max_beats)
        super().__init__({
            "begin": In(1),
            "running": In(1),
            "abort": In(1),
            "last_row": In(8),
            "last_col": In(8),
            "last_beat": In(range(max_beats)),
            "i": In(stream.Signature(unsigned(8))),
            "o": Out(stream.Signature(beat_layout(channels_per_beat))),
            "starving": Out(1),
            "done": Out(1),
            "credit": Out(1),
        })

    @property
    def channels_per_beat(self):
        """Bytes per beat."""
        return self._channels_per_beat

    @property
    def max_beats(self):
        """Largest number of input beats per pixel."""
        return self._max_beats

    @property
    def credit_chunk(self):
        """Bytes per ``credit`` pulse."""
        return self._credit_chunk

    def elaborate(self, platform):
        m = Module()
        channels_per_beat = self._channels_per_beat
        m.submodules.position = position = RasterCounter(self._max_beats)
        m.d.comb += [
            position.last_row.eq(self.last_row),
            position.last_col.eq(self.last_col),
            position.last_beat.eq(self.last_beat),
            position.advance.eq(self.o.valid & self.o.ready),
        ]

        byte_idx = Signal(range(channels_per_beat))
        abort = self.abort
        take = Signal()
        with m.If(self.running & ~self.done & ~self.o.valid):
            m.d.comb += self.starving.eq(~abort)
            with m.If(abort):
                m.d.comb += take.eq(1)
            with m.Else():
                m.d.comb += [take.eq(self.i.valid), self.i.ready.eq(1)]
        with m.If(self.running & abort):
            # Input still trickling in belongs to the abandoned run.
            m.d.comb += self.i.ready.eq(1)

        chunk = Signal(range(self._credit_chunk))
        with m.If(take & ~abort):
            m.d.sync += chunk.eq(chunk + 1)
            if self._credit_chunk > 1:
                m.d.comb += self.credit.eq(chunk == self._credit_chunk - 1)
            else:
                m.d.comb += self.credit.eq(1)

        o_data = self.o.payload.data.as_value()
        with m.If(take):
            new_byte = self.i.payload & ~abort.replicate(8)
            # Shift in from the top, so that the first byte ends up in lane 0.
            if channels_per_beat > 1:
                m.d.sync += o_data.eq(Cat(o_data[8:], new_byte))
            else:
                m.d.sync += o_data.eq(new_byte)
            with m.If(byte_idx == channels_per_beat - 1):
                m.d.sync += [
                    byte_idx.eq(0),
                    self.o.valid.eq(1),
                    self.o.payload.first.eq(position.first),
                    self.o.payload.last.eq(position.last),
                ]
            with m.Else():
                m.d.sync += byte_idx.eq(byte_idx + 1)

        with m.If(self.begin):
            m.d.sync += self.done.eq(0)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
            with m.If(self.o.payload.last):
                m.d.sync += self.done.eq(1)
        return m
