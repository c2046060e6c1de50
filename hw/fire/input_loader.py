"""Input loader: fills a double-buffered group buffer from the input stream, W channels a cycle.

The Fire engine's lanes each own one pixel of a group of P consecutive raster pixels. The
loader takes pixels from the ``i`` stream (``beats`` beats of L channels each, zero padded) and
writes channel ``c`` of pixel ``k`` of group ``g`` into byte ``k`` of word ``(g mod 2, c)`` of
its buffer. When a group is complete (P pixels, or the run's last pixel) its slot is marked
``full``; the consumer reads it through ``r_addr``/``r_data`` and hands it back with
``release``. The loader waits for a free slot before it accepts a group's first beat, so the
buffer is a two-deep queue of groups.
"""

from amaranth.hdl import Array, Cat, Module, Mux, Signal, unsigned
from amaranth.lib import stream
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from hw.blocks.layouts import beat_layout
from hw.blocks.signals import delay, zero_extend
from hw.fire.group_buffer import GroupBuffer

__all__ = ["InputLoader"]


class InputLoader(GroupBuffer):
    """Stream -> double-buffered group buffer, W channels per cycle.

    Throughput W channels per cycle: a beat of L channels is accepted every L / W cycles
    (``i.ready`` is high only when the previous beat's bytes are all written). Latency: a
    group's slot is ``full`` the cycle after its last channel is taken, and that channel is in
    the RAM one cycle later (the writes are registered): a consumer must not read a slot in
    the first cycle its ``full`` bit is high (the engines' pipelines read it several cycles
    after their sequencer sees ``full``); ``r_data`` is the word
    at ``r_addr`` one cycle before (a synchronous block-RAM read; with W > 1 its lanes then pass
    a W-way rotation, no register).

    Parameters
    ----------
    lanes, channels_per_beat, channels, channels_per_cycle : int
        P, L (of ``i``), words per slot and W, as for
        :class:`~hw.fire.group_buffer.GroupBuffer`.

    Members
    -------
    i : In(stream.Signature(beat_layout(L)))
        Pixels in raster order; ``first``/``last`` are ignored.
    go : In(1)
        Pulse: start a run of ``pixels`` pixels of ``beats`` beats each (both steady until the
        run's last pixel is written).
    pixels : In(16)
    beats : In(range(channels + 1))
    full : Out(2)
        Bit s: slot s holds a whole group not yet released.
    release : In(2)
        Bit s: the consumer is done with slot s (a one-cycle pulse).
    r_addr : In(range(2 * channels))
        ``slot * channels + channel``.
    r_data : Out(unsigned(8 * lanes))
        Channel of every pixel of the slot's group, lane k in bits 8k..8k+7.
    r_addr1, r_data1, ... : as ``r_addr``, ``r_data``
        Further read ports, ``read_ports - 1`` of them (the dataflow datapath's units).
    """

    def __init__(self, *, lanes, channels_per_beat, channels, read_ports=1,
                 channels_per_cycle=1):
        self.check_parameters(lanes, channels_per_beat, channels, channels_per_cycle)
        self._read_ports = read_ports
        extra = {}
        for n in range(1, read_ports):
            extra[f"r_addr{n}"] = In(range(2 * channels))
            extra[f"r_data{n}"] = Out(unsigned(8 * lanes))
        super().__init__({**extra,
            "i": In(stream.Signature(beat_layout(channels_per_beat))),
            "go": In(1),
            "pixels": In(16),
            "beats": In(range(channels + 1)),
            "full": Out(2),
            "release": In(2),
            "r_addr": In(range(2 * channels)),
            "r_data": Out(unsigned(8 * lanes)),
        }, lanes=lanes, channels_per_beat=channels_per_beat, channels=channels,
           channels_per_cycle=channels_per_cycle)

    def elaborate(self, platform):
        m = Module()
        P, L, W, slot_words = self._lanes, self._beat, self._per_cycle, self._channels
        write = self._storage(m)

        fill = Signal(2)
        self._slot_flags(m, fill, self.release)

        active = Signal()
        slot = Signal()                  # parity of the group being loaded
        lane = Signal(range(P))
        pixel = Signal(16)
        beat = Signal.like(self.beats)
        chunk_index = Signal(range(L // W))
        hold = Signal(8 * L)             # the beat being written out, W bytes a cycle
        accept = Signal()
        m.d.comb += [
            self.i.ready.eq(active & (chunk_index == 0) & ~self.full.bit_select(slot, 1)),
            accept.eq(self.i.valid & self.i.ready),
        ]
        chunk = Mux(chunk_index == 0, self.i.payload.data.as_value()[:8 * W],
                    hold.word_select(chunk_index, 8 * W))
        chan = Signal(range(slot_words))
        m.d.comb += chan.eq(beat * L + chunk_index * W)
        writing = accept | (chunk_index != 0)
        # The write goes through a register: the stream handshake then does not reach the
        # RAM's address and enable pins, across the chip from the stream logic (the ECP5
        # build's critical path at 100 MHz). Every consumer reads a slot several cycles
        # after it is full, so the one-cycle-later write is always in time.
        # The lane's write enables are decoded before that register, not after it: the
        # 64-lane ULX3S build's critical path (102.9 MHz) was the registered lane through the
        # decode into a RAM's byte-enable pin 17 rows away (5.8 ns of routing).
        mask = Signal(P // W)
        m.d.comb += mask.eq(Mux(writing, 1 << lane[ceil_log2(W):], 0))
        write(*(delay(m, v, 1, f"{n}_w")
                for v, n in ((chan, "chan"), (slot, "slot"), (lane, "lane"), (chunk, "chunk"),
                             (mask, "mask"))))
        with m.If(accept):
            m.d.sync += hold.eq(self.i.payload.data)
        with m.If(writing):
            m.d.sync += chunk_index.eq(Mux(chunk_index == L // W - 1, 0, chunk_index + 1))
            with m.If(chunk_index == L // W - 1):
                m.d.sync += beat.eq(beat + 1)
                with m.If(beat + 1 == self.beats):
                    m.d.sync += [beat.eq(0), lane.eq(lane + 1), pixel.eq(pixel + 1)]
                    with m.If((lane == P - 1) | (pixel + 1 == self.pixels)):
                        m.d.comb += fill.eq(Mux(slot, 0b10, 0b01))
                        m.d.sync += [slot.eq(~slot), lane.eq(0)]
                        with m.If(pixel + 1 == self.pixels):
                            m.d.sync += active.eq(0)
        with m.If(self.go):
            m.d.sync += [active.eq(1), slot.eq(0), lane.eq(0), pixel.eq(0), beat.eq(0),
                         chunk_index.eq(0)]
        return m

    def _storage(self, m):
        """The buffer and its read ports; returns ``write(chan, slot, lane, chunk, mask)``,
        which writes channels ``chan .. chan + W - 1`` (bytes of ``chunk``) of lane ``lane``;
        ``mask`` is the one-hot ``1 << (lane // W)``, or 0 for no write."""
        P, W, slot_words = self._lanes, self._per_cycle, self._channels
        ports = [(self.r_addr, self.r_data)] + [
            (getattr(self, f"r_addr{n}"), getattr(self, f"r_data{n}"))
            for n in range(1, self._read_ports)]
        addr_bits = ceil_log2(slot_words)
        if W == 1:
            rd, wr = self._buffer(m, granularity=8)
            readers = [rd] + [m.submodules.buffer.read_port() for _ in ports[1:]]
            for (addr, data), port in zip(ports, readers):
                m.d.comb += [port.addr.eq(addr), data.eq(port.data)]

            def write(chan, slot, lane, chunk, mask):
                m.d.comb += [wr.addr.eq(Cat(zero_extend(chan, addr_bits), slot)),
                             wr.data.eq(Cat(*([chunk] * P))),
                             wr.en.eq(mask)]
            return write

        banks = self._banks(m)
        for n, (addr, data) in enumerate(ports):
            shift = Signal(range(W), name=f"shift{n}")
            m.d.sync += shift.eq(addr[:ceil_log2(W)])    # the channel mod W of the read
            words = []
            for bank in banks:
                port = bank.read_port()
                m.d.comb += port.addr.eq(addr)
                words.append(port.data)
            m.d.comb += data.eq(self._lane_word(m, words, shift, f"read{n}"))
        writers = [bank.write_port(granularity=8) for bank in banks]

        def write(chan, slot, lane, chunk, mask):
            r = lane[:ceil_log2(W)]
            for b, wr in enumerate(writers):
                offset = (b - r)[:ceil_log2(W)]       # the chunk's byte that bank b stores
                byte = Signal(8, name=f"byte_b{b}")
                m.d.comb += [
                    byte.eq(Array(chunk.word_select(i, 8) for i in range(W))[offset]),
                    wr.addr.eq(Cat(zero_extend(chan | offset, addr_bits), slot)),
                    wr.data.eq(Cat(*([byte] * (P // W)))),
                    wr.en.eq(mask),
                ]
        return write
