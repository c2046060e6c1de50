"""Output drainer: empties a double-buffered result buffer to the output stream.

The producer writes channel ``c`` of every pixel of group ``g`` as one word ``(g mod 2, c)``
(``w_*``) and marks the slot with ``fill`` when the group is complete. The drainer reads one
channel of one pixel per cycle, in raster order, ``beats * L`` channels per pixel (channels
from ``channels`` on are sent as zeros), packs L bytes into a beat of ``o`` with ``first`` on
the run's first beat and ``last`` on its last, and frees the slot (``full`` drops) after its
last read.

Reads go through two registers (the RAM's output register, then the lane select) into a small
FIFO; a read is only issued when the FIFO has room for everything in flight, so back-pressure
on ``o`` never has to stop the read pipeline.
"""

from amaranth.hdl import Array, Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream
from amaranth.lib.memory import Memory
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from hw.blocks.layouts import beat_layout
from hw.blocks.signals import delay, zero_extend
from hw.fire.group_buffer import GroupBuffer

__all__ = ["OutputDrainer"]


class OutputDrainer(GroupBuffer):
    """Double-buffered result buffer -> stream, one channel per cycle.

    Throughput one channel per cycle (a beat every L cycles) while ``o`` is ready. Latency
    (:attr:`TAIL`): the last beat of a run is on ``o`` ``TAIL`` cycles after the cycle its last
    channel is read (two read registers, the FIFO, the beat packer and the output register),
    and ``drained`` is high from the cycle after it is transferred until the next ``go``.

    Parameters
    ----------
    lanes, channels_per_beat, channels : int
        P, L (of ``o``) and words per slot, as for
        :class:`~hw.fire.group_buffer.GroupBuffer`.

    Members
    -------
    o : Out(stream.Signature(beat_layout(L)))
    go : In(1)
        Pulse: start a run of ``pixels`` pixels of ``beats`` beats each (steady during the run).
    pixels : In(16)
    out_channels : In(range(channels + 1))
        Real channels per pixel; the rest of ``beats * L`` are sent as zeros.
    beats : In(range(channels + 1))
    w_addr : In(range(2 * channels)); w_data : In(unsigned(8 * lanes)); w_en : In(1)
        ``slot * channels + channel``, that channel of every pixel of the slot's group.
    fill : In(2)
        Bit s: slot s now holds a whole group (a one-cycle pulse).
    full : Out(2)
        Bit s: slot s is filled and not yet read out.
    drained : Out(1)
        The run's last beat has left (high until the next ``go``; high before the first).
    w_addr1, w_data1, w_en1, ... : as ``w_addr``, ``w_data``, ``w_en``
        With ``capacities`` (N sources, the dataflow datapath's units): source u writes its own
        memory of ``2 * capacities[u]`` words, at ``slot * capacities[u] + local channel``;
        ``w_en{u}`` has ``write_blocks[u]`` bits, one per block of ``P / write_blocks[u]``
        lanes (a unit with fewer lanes than the group writes one block at a time).
    bounds : In(ArrayLayout(range(channels + 1), N - 1))
        With ``capacities``: source u holds output channels ``bounds[u-1] .. bounds[u] - 1``
        (``bounds[-1]`` = 0; the last source up to ``out_channels``); steady during a run.
    """

    FIFO_DEPTH = 4
    TAIL = 6

    def __init__(self, *, lanes, channels_per_beat, channels, capacities=None,
                 write_blocks=None):
        self.check_parameters(lanes, channels_per_beat, channels)
        self._capacities = capacities
        extra = {}
        if capacities is not None:
            self._blocks = write_blocks or (1,) * len(capacities)
            for u, cap in enumerate(capacities):
                self.check_parameters(lanes, 1, cap)
                if lanes % self._blocks[u]:
                    raise ValueError(f"Write blocks must divide the lane count, not "
                                     f"{self._blocks[u]!r}")
                if u:
                    extra.update({f"w_addr{u}": In(range(2 * cap)),
                                  f"w_data{u}": In(unsigned(8 * lanes)),
                                  f"w_en{u}": In(self._blocks[u])})
            extra["w_en"] = In(self._blocks[0])
            extra["bounds"] = In(data.ArrayLayout(range(channels + 1), len(capacities) - 1))
        super().__init__({
            "o": Out(stream.Signature(beat_layout(channels_per_beat))),
            "go": In(1),
            "pixels": In(16),
            "out_channels": In(range(channels + 1)),
            "beats": In(range(channels + 1)),
            "w_addr": In(range(2 * channels)),
            "w_data": In(unsigned(8 * lanes)),
            "w_en": In(1),
            "fill": In(2),
            "full": Out(2),
            "drained": Out(1),
            **extra,
        }, lanes=lanes, channels_per_beat=channels_per_beat, channels=channels)

    def elaborate(self, platform):
        m = Module()
        P, L, slot_words = self._lanes, self._beat, self._channels
        if self._capacities is None:
            rd, wr = self._buffer(m)
            m.d.comb += [wr.addr.eq(self.w_addr), wr.data.eq(self.w_data), wr.en.eq(self.w_en)]

        release = Signal(2)
        self._slot_flags(m, self.fill, release)

        active = Signal()
        slot = Signal()                  # parity of the group being read
        lane = Signal(range(P))
        pixel = Signal(16)
        chan = Signal(range(slot_words + L + 1))
        m.submodules.fifo = fifo = SyncFIFO(width=10, depth=self.FIFO_DEPTH)
        inflight = Signal(range(3))
        issue = Signal()
        m.d.comb += issue.eq(active & self.full.bit_select(slot, 1) &
                             (fifo.level + inflight < self.FIFO_DEPTH))
        if self._capacities is None:
            m.d.comb += rd.addr.eq(Cat(zero_extend(chan, ceil_log2(slot_words)), slot))
            read_data = rd.data
        else:
            read_data = self._sources(m, chan, slot)
        last_chan = chan + 1 == self.beats * L
        last_pixel = pixel + 1 == self.pixels
        with m.If(issue):
            m.d.sync += chan.eq(chan + 1)
            with m.If(last_chan):
                m.d.sync += [chan.eq(0), lane.eq(lane + 1), pixel.eq(pixel + 1)]
                with m.If((lane == P - 1) | last_pixel):
                    m.d.comb += release.eq(Mux(slot, 0b10, 0b01))
                    m.d.sync += [slot.eq(~slot), lane.eq(0)]
                    with m.If(last_pixel):
                        m.d.sync += active.eq(0)
        with m.If(self.go):
            m.d.sync += [active.eq(1), slot.eq(0), lane.eq(0), pixel.eq(0), chan.eq(0)]

        # What each read is for, delayed two cycles to meet its registered data.
        rd_v, rd_lane, rd_pad, rd_first, rd_last = (
            delay(m, s, 2, n) for s, n in (
                (issue, "rd_v"), (lane, "rd_lane"), (chan >= self.out_channels, "rd_pad"),
                ((pixel == 0) & (chan == 0), "rd_first"), (last_pixel & last_chan, "rd_last")))
        data = delay(m, read_data, 1, "rd_data") if self._capacities is None else read_data
        m.d.sync += inflight.eq(inflight + issue - rd_v)
        picked = Mux(rd_pad, 0, data.word_select(rd_lane, 8))
        m.d.comb += [fifo.w_en.eq(rd_v), fifo.w_data.eq(Cat(picked, rd_first, rd_last))]
        packing = self._pack(m, fifo, L)
        m.d.comb += self.drained.eq(~active & (inflight == 0) & ~fifo.r_rdy & (packing == 0) &
                                    ~self.o.valid)
        return m

    def _sources(self, m, chan, slot):
        """One memory per source, and per block of lanes for a source written a block at a
        time; returns the word read two cycles before: each source's RAM output is
        registered, then the source is selected (a select before the register was the ECP5
        critical path: block-RAM clock-to-out, routing across the chip, then the mux).

        Blocks are separate memories, not one memory with a write enable per block: with those,
        Yosys's ECP5 flow (the pinned YoWASP build) left two flip-flops driving one net of the
        host-driven dataflow design, or failed an assertion in ABC."""
        caps = self._capacities
        reads = []
        for u, cap in enumerate(caps):
            blocks = self._blocks[u]
            width = 8 * self._lanes // blocks
            suffix = str(u) if u else ""
            base = self.bounds[u - 1] if u else 0
            local = Signal(ceil_log2(cap), name=f"local{u}")
            m.d.comb += local.eq(chan - base)
            words = []
            for b in range(blocks):
                mem = Memory(shape=unsigned(width), depth=2 * cap, init=[])
                m.submodules[f"buffer{u}" + (f"_{b}" if blocks > 1 else "")] = mem
                rd, wr = mem.read_port(), mem.write_port()
                m.d.comb += [
                    wr.addr.eq(getattr(self, f"w_addr{suffix}")),
                    wr.data.eq(getattr(self, f"w_data{suffix}")[b * width:(b + 1) * width]),
                    wr.en.eq(getattr(self, f"w_en{suffix}")[b]),
                    rd.addr.eq(Cat(local, slot)),
                ]
                words.append(rd.data)
            reads.append(delay(m, Cat(*words), 1, f"rd_data{u}"))
        source = Signal(range(len(caps)))
        m.d.comb += source.eq(sum((chan >= b).as_unsigned() for b in self.bounds))
        return Array(reads)[delay(m, source, 2, "source_rd")]

    def _pack(self, m, fifo, L):
        """Bytes from the FIFO into beats: A assembles, B (``o``) is the output register.

        Returns the count of bytes in A."""
        a_data = Signal(8 * L)
        a_count = Signal(range(L + 1))
        a_first = Signal()
        a_last = Signal()
        b_valid = Signal()
        move = Signal()
        take = Signal()
        m.d.comb += [
            move.eq((a_count == L) & (~b_valid | self.o.ready)),
            take.eq(fifo.r_rdy & ((a_count < L) | move)),
            fifo.r_en.eq(take),
        ]
        byte = fifo.r_data[:8]
        with m.If(take):
            m.d.sync += a_data.eq(Cat(a_data[8:], byte) if L > 1 else byte)
            with m.If((a_count == 0) | move):
                m.d.sync += a_first.eq(fifo.r_data[8])
            m.d.sync += a_last.eq(fifo.r_data[9])
        with m.If(move):
            m.d.sync += a_count.eq(take)
        with m.Elif(take):
            m.d.sync += a_count.eq(a_count + 1)
        with m.If(move):
            m.d.sync += [b_valid.eq(1), self.o.payload.data.eq(a_data),
                         self.o.payload.first.eq(a_first), self.o.payload.last.eq(a_last)]
        with m.Elif(self.o.ready):
            m.d.sync += b_valid.eq(0)
        m.d.comb += self.o.valid.eq(b_valid)
        return a_count
