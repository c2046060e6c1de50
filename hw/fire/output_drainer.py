"""Output drainer: empties a double-buffered result buffer to the output stream.

The producer writes channel ``c`` of every pixel of group ``g`` as one word ``(g mod 2, c)``
(``w_*``) and marks the slot with ``fill`` when the group is complete. The drainer reads W
channels of one pixel per cycle (one with a single bank), in raster order, ``beats * L``
channels per pixel (channels from ``channels`` on are sent as zeros), packs L bytes into a
beat of ``o`` with ``first`` on the run's first beat and ``last`` on its last, and frees the
slot (``full`` drops) after its last read.

Reads go through two registers (the RAM's output register, then the lane select: with more than
8 lanes and W = 1, its first step within blocks of 8 lanes) into a small FIFO; a read is only
issued when the FIFO has room for everything in flight, so back-pressure on ``o`` never has to
stop the read pipeline.
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
    """Double-buffered result buffer -> stream, W channels per cycle.

    Throughput W channels per cycle (a beat every L / W cycles) while ``o`` is ready. Latency
    (:attr:`TAIL`): the last beat of a run is on ``o`` ``TAIL`` cycles after the cycle its last
    channel is read (two read registers, the register after the lane select, the FIFO, the
    beat packer and the output register),
    and ``drained`` is high from the cycle after it is transferred until the next ``go``.

    Parameters
    ----------
    lanes, channels_per_beat, channels, channels_per_cycle : int
        P, L (of ``o``), words per slot and W, as for
        :class:`~hw.fire.group_buffer.GroupBuffer` (W > 1 only without ``capacities``).

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

    # Room for the reads in flight (up to three) and one more, so reads go on every cycle.
    FIFO_DEPTH = 5
    TAIL = 7

    def __init__(self, *, lanes, channels_per_beat, channels, capacities=None,
                 write_blocks=None, channels_per_cycle=1):
        self.check_parameters(lanes, channels_per_beat, channels, channels_per_cycle)
        if capacities is not None and channels_per_cycle != 1:
            raise ValueError("Channels per cycle must be 1 with several sources")
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
        }, lanes=lanes, channels_per_beat=channels_per_beat, channels=channels,
           channels_per_cycle=channels_per_cycle)

    def elaborate(self, platform):
        m = Module()
        P, L, W, slot_words = self._lanes, self._beat, self._per_cycle, self._channels
        release = Signal(2)
        self._slot_flags(m, self.fill, release)

        active = Signal()
        slot = Signal()                  # parity of the group being read
        lane = Signal(range(P))
        pixel = Signal(16)
        chan = Signal(range(slot_words + L + 1))
        m.submodules.fifo = fifo = SyncFIFO(width=8 * W + 2, depth=self.FIFO_DEPTH)
        # FIFO places not yet promised to a read: FIFO_DEPTH - level - reads in flight, kept
        # as a register (an add and a compare on the FIFO's level before the issue decision,
        # then the channel counters, was the ECP5 build's critical path).
        credits = Signal(range(self.FIFO_DEPTH + 1), init=self.FIFO_DEPTH)
        issue = Signal()
        m.d.comb += issue.eq(active & self.full.bit_select(slot, 1) & (credits != 0))
        m.d.sync += credits.eq(credits - issue + (fifo.r_en & fifo.r_rdy))
        if self._capacities is None:
            read_data = self._storage(m, chan, slot, lane)
        else:
            read_data = self._sources(m, chan, slot)
        # ``chan + W == beats * L`` and ``pixel + 1 == pixels`` of the read being issued, as
        # registers computed a read ahead.
        last_chan = Signal()
        last_pixel = Signal()
        end = self.beats * L
        with m.If(issue):
            m.d.sync += [chan.eq(chan + W), last_chan.eq(chan + 2 * W == end)]
            with m.If(last_chan):
                m.d.sync += [chan.eq(0), lane.eq(lane + 1), pixel.eq(pixel + 1),
                             last_chan.eq(W == end), last_pixel.eq(pixel + 2 == self.pixels)]
                with m.If((lane == P - 1) | last_pixel):
                    m.d.comb += release.eq(Mux(slot, 0b10, 0b01))
                    m.d.sync += [slot.eq(~slot), lane.eq(0)]
                    with m.If(last_pixel):
                        m.d.sync += active.eq(0)
        with m.If(self.go):
            m.d.sync += [active.eq(1), slot.eq(0), lane.eq(0), pixel.eq(0), chan.eq(0),
                         last_chan.eq(W == end), last_pixel.eq(self.pixels == 1)]

        # What each read is for, delayed two cycles to meet its registered data.
        pad = Cat(*(chan + i >= self.out_channels for i in range(W)))
        rd_v, rd_lane, rd_pad, rd_first, rd_last = (
            delay(m, s, 2, n) for s, n in (
                (issue, "rd_v"), (lane, "rd_lane"), (pad, "rd_pad"),
                ((pixel == 0) & (chan == 0), "rd_first"), (last_pixel & last_chan, "rd_last")))
        wr_v = delay(m, rd_v, 1, "wr_v")
        if W == 1 and P > 8:
            wr_data = Cat(self._pick_in_two(m, read_data, rd_lane, rd_pad),
                          delay(m, Cat(rd_first, rd_last), 1, "wr_frame"))
        else:
            picked = self._pick(m, read_data, rd_lane)
            kept = Cat(*(Mux(rd_pad[i], 0, picked.word_select(i, 8)) for i in range(W)))
            # The lane select is a P/W-way multiplexer: registered before the FIFO's LUT RAM
            # (RAM output register, select, then the RAM's write data was an ECP5 critical
            # path).
            wr_data = delay(m, Cat(kept, rd_first, rd_last), 1, "wr_data")
        m.d.comb += [fifo.w_en.eq(wr_v), fifo.w_data.eq(wr_data)]
        self._pack(m, fifo, L)
        # A register: set by the transfer of the run's last beat (everything else is empty by
        # then: no read in flight, the FIFO and the packer empty), cleared by ``go``. The
        # same as ``~active``, every credit back, nothing packing and ``o`` empty, without
        # the logic (the 32-lane ULX3S build's critical path ran from it through the
        # sequencer's FSM, 2026-12-05).
        drained = Signal(init=1)
        m.d.comb += self.drained.eq(drained)
        with m.If(self.o.valid & self.o.ready & self.o.payload.last):
            m.d.sync += drained.eq(1)
        with m.If(self.go):
            m.d.sync += drained.eq(0)
        return m

    def _storage(self, m, chan, slot, lane):
        """The buffer, written through ``w_*``; returns what the reads of channels
        ``chan .. chan + W - 1`` of ``lane`` give two cycles later (the RAM's output register,
        then a register): the slot's word, or with W > 1 the banks' words."""
        W, addr_bits = self._per_cycle, ceil_log2(self._channels)
        if W == 1:
            rd, wr = self._buffer(m)
            m.d.comb += [wr.addr.eq(self.w_addr), wr.data.eq(self.w_data), wr.en.eq(self.w_en),
                         rd.addr.eq(Cat(zero_extend(chan, addr_bits), slot))]
            return delay(m, rd.data, 1, "rd_data")
        banks = self._banks(m)
        words = self._bank_words(m, self.w_data, self.w_addr[:ceil_log2(W)], "write")
        r = lane[:ceil_log2(W)]
        reads = []
        for b, (bank, word) in enumerate(zip(banks, words)):
            wr, rd = bank.write_port(), bank.read_port()
            offset = (b - r)[:ceil_log2(W)]           # the channel bank b holds for this lane
            m.d.comb += [wr.addr.eq(self.w_addr), wr.data.eq(word), wr.en.eq(self.w_en),
                         rd.addr.eq(Cat(zero_extend(chan | offset, addr_bits), slot))]
            reads.append(delay(m, rd.data, 1, f"rd_data{b}"))
        return Cat(*reads)

    def _pick(self, m, read_data, rd_lane):
        """The W channels of lane ``rd_lane`` from ``read_data``, in channel order: one byte
        with a single bank; else byte ``lane // W`` of every bank, bank ``(lane + i) mod W``
        giving channel i."""
        W = self._per_cycle
        if W == 1:
            return read_data.word_select(rd_lane, 8)
        width = 8 * self._lanes // W
        r, j = rd_lane[:ceil_log2(W)], rd_lane[ceil_log2(W):]
        bytes_ = [read_data[b * width:(b + 1) * width].word_select(j, 8) for b in range(W)]
        return Cat(*(Array(bytes_)[(r + i)[:ceil_log2(W)]] for i in range(W)))

    def _pick_in_two(self, m, read_data, rd_lane, rd_pad):
        """Byte ``rd_lane`` of ``read_data`` (zero if ``rd_pad``) a cycle later, picked in two
        steps with a register between: within each block of 8 lanes (beside its RAMs), then
        among the P/8 blocks (into the FIFO's write data). One P-way select there had its
        inputs spread along a row of block RAMs: the 32-lane ULX3S build's critical path,
        8.4 ns of routing at 95.1 MHz."""
        blocks = self._lanes // 8
        lane_lo, lane_hi = rd_lane[:3], delay(m, rd_lane[3:], 1, "rd_lane_hi")
        near = [Mux(rd_pad, 0, read_data[64 * b:64 * b + 64].word_select(lane_lo, 8))
                for b in range(blocks)]
        return delay(m, Cat(*near), 1, "rd_block_bytes").word_select(lane_hi, 8)

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
        """Chunks of W bytes from the FIFO into beats: A assembles, B (``o``) is the output
        register.

        Returns the count of chunks in A."""
        W = self._per_cycle
        n = L // W
        a_data = Signal(8 * L)
        a_count = Signal(range(n + 1))
        a_first = Signal()
        a_last = Signal()
        b_valid = Signal()
        move = Signal()
        take = Signal()
        m.d.comb += [
            move.eq((a_count == n) & (~b_valid | self.o.ready)),
            take.eq(fifo.r_rdy & ((a_count < n) | move)),
            fifo.r_en.eq(take),
        ]
        chunk = fifo.r_data[:8 * W]
        with m.If(take):
            m.d.sync += a_data.eq(Cat(a_data[8 * W:], chunk) if n > 1 else chunk)
            with m.If((a_count == 0) | move):
                m.d.sync += a_first.eq(fifo.r_data[8 * W])
            m.d.sync += a_last.eq(fifo.r_data[8 * W + 1])
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
