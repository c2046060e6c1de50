"""The dataflow Fire datapath: a squeeze PE array feeding parallel expand-1x1 and expand-3x3
units, each with its own entry stream, beside the shared-lane :class:`~hw.fire.engine.FireEngine`.

Structure (``--arch dataflow``; see :mod:`hw.dataflow.program` for how work is split):

- **Three units**, each a P-lane :class:`~hw.fire.entry_pipeline.EntryPipeline` (decode,
  codebook, multiply, accumulate, requantise; latency 17, one entry per cycle) with its own
  :class:`~hw.blocks.weight_store.WeightStore` holding only its sub-convolutions, and its own
  :class:`~hw.dataflow.unit_sequencer.UnitSequencer`. 3P multipliers in all.
- Unit u has ``P / passes[u]`` multipliers (``program.passes``) and covers a group's P pixels
  in that many passes, writing one block of the group's word at a time.
- The **squeeze PE array** reads the input buffer and writes squeezed pixels into the line
  buffers; the **expand-1x1** and **expand-3x3 units** each read their own copy of the line
  buffer (:class:`~hw.fire.line_buffer.LineBuffer`, all written by the squeeze unit: one
  read port each) and write their own output memory of the
  :class:`~hw.fire.output_drainer.OutputDrainer`, which sends the channels in order. Where a
  layer's squeeze is light the squeeze PE array also expands some channels (a third
  line-buffer copy, its own output memory; see :mod:`hw.dataflow.program`).
- They run concurrently: the squeeze unit works ``A`` or more groups ahead of the expand units,
  and the two expand units work on the same group at once, each on its own channels. A plain
  layer (conv1 on patches, conv10) splits its output channels over the three units, which all
  read the input buffer (three read ports) and write their own output memories.

The ports and the stream formats are the shared engine's, so the same drivers and tests run
both. Cycle counts are predicted exactly by :mod:`hw.dataflow.cycle_model`.
"""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import connect, flipped
from amaranth.utils import ceil_log2

from hw.blocks.layouts import engine_members
from hw.blocks.params import check_power_of_two
from hw.blocks.weight_store import DEFAULT_BANK_DEPTH, WeightStore
from hw.dataflow.program import DataflowProgram
from hw.dataflow.sequencer import DataflowSequencer
from hw.fire.engine import buffer_slots, check_layers, check_parameters, line_groups
from hw.fire.entry_pipeline import EntryPipeline
from hw.fire.input_loader import InputLoader
from hw.fire.line_buffer import LineBuffer
from hw.fire.output_drainer import OutputDrainer

__all__ = ["DataflowEngine"]


def _pow2(n):
    return 1 << ceil_log2(max(1, n))


class DataflowEngine(wiring.Component):
    """Run any layer of a :class:`~hw.dataflow.program.DataflowProgram`, bit-exact with
    ``golden.fixed.fire`` / ``golden.fixed.conv1x1``; ports as :class:`FireEngine`'s.

    Parameters
    ----------
    program : DataflowProgram
    lanes : int
        P, the pixels of a group (a power of two). Unit u has ``P / program.passes[u]``
        multipliers and covers a group in that many passes.
    channels_per_beat, acc_width, bank_depth :
        As for :class:`~hw.fire.engine.FireEngine`.
    fixed_widths : bool
        As for :class:`~hw.fire.engine.FireEngine`: Fire layers run only at their own widths
        (another width is rejected), so the units' line buffers rotate only for those widths.
    """

    #: Cycles from a flush token's issue until its results are written.
    DRAIN = EntryPipeline.latency
    #: Line-buffer groups beyond 2A + 1, so the squeeze unit can run ahead of the expand units.
    SLACK = 1

    def __init__(self, program, *, lanes=8, channels_per_beat=8, acc_width=32,
                 bank_depth=DEFAULT_BANK_DEPTH, fixed_widths=False):
        if not isinstance(program, DataflowProgram):
            raise TypeError(f"Program must be a DataflowProgram, not {program!r}")
        check_power_of_two("Lane count", lanes)         # its sequencers divide by shifts
        check_parameters(lanes=lanes, channels_per_beat=channels_per_beat, acc_width=acc_width)
        check_layers(program)
        if any(lanes % p for p in program.passes):
            raise ValueError(f"{lanes} lanes cannot be split into {program.passes} passes")
        self._program = program
        self._fixed_widths = bool(fixed_widths)
        self.weight_stores = [WeightStore(unit, bank_depth=bank_depth) for unit in program.units]
        self._lanes, self._beat, self._acc_width = lanes, channels_per_beat, acc_width
        L = channels_per_beat
        self._cin_slot, self._csq_slot, self._e_slot = buffer_slots(program, L)
        self._out_caps = [_pow2(program.out_capacity(u)) for u in range(3)]
        self._s_groups = self.line_groups_for(program, lanes)
        super().__init__(engine_members(L))

    @classmethod
    def line_groups_for(cls, program, lanes):
        """D, the line buffer's groups: a power of two of at least ``2A + 1 + SLACK`` for the
        widest Fire layer (``A = ceil((W+1)/P)``)."""
        return line_groups(program, lanes, cls.SLACK)

    @property
    def program(self):
        return self._program

    @property
    def lanes(self):
        return self._lanes

    @property
    def unit_lanes(self):
        """Multipliers of the squeeze, expand-1x1 and expand-3x3 units."""
        return tuple(self._lanes // p for p in self._program.passes)

    @property
    def multipliers(self):
        return sum(self.unit_lanes)

    @property
    def channels_per_beat(self):
        return self._beat

    @property
    def line_groups(self):
        return self._s_groups

    def elaborate(self, platform):
        m = Module()
        P, L, D = self._lanes, self._beat, self._s_groups
        m.submodules.sequencer = seq = DataflowSequencer(
            self._program, lanes=P, channels_per_beat=L, groups=D, drain=self.DRAIN,
            fixed_widths=self._fixed_widths)
        # Every unit reads the input buffer in a plain layer; in a Fire layer only the squeeze
        # unit does, so a program of Fire layers needs one read port (each port beyond the
        # first is a copy of the memory).
        plain = any(not layer.is_fire for layer in self._program.layers)
        m.submodules.loader = loader = InputLoader(lanes=P, channels_per_beat=L,
                                                   channels=self._cin_slot,
                                                   read_ports=3 if plain else 1)
        m.submodules.drainer = drainer = OutputDrainer(
            lanes=P, channels_per_beat=L, channels=self._e_slot, capacities=self._out_caps,
            write_blocks=self._program.passes)
        connect(m, flipped(self.start), seq.start)
        connect(m, flipped(self.i), loader.i)
        connect(m, drainer.o, flipped(self.o))
        m.d.comb += [
            self.done.eq(seq.done), self.busy.eq(seq.busy),
            loader.go.eq(seq.go), loader.pixels.eq(seq.pixels),
            loader.beats.eq(seq.desc.cin_beats),
            seq.x_full.eq(loader.full), loader.release.eq(seq.x_release),
            drainer.go.eq(seq.go), drainer.pixels.eq(seq.pixels),
            drainer.out_channels.eq(seq.desc.e), drainer.beats.eq(seq.desc.e_beats),
            seq.o_full.eq(drainer.full), drainer.fill.eq(seq.o_fill),
            seq.drained.eq(drainer.drained),
            drainer.bounds[0].eq(seq.bounds[0]), drainer.bounds[1].eq(seq.bounds[1]),
        ]
        pipes = []
        for u, (store, unit) in enumerate(zip(self.weight_stores, seq.units)):
            pipe = EntryPipeline(self._program.units[u], lanes=P, groups=D,
                                 in_slot=self._cin_slot, sq_slot=self._csq_slot,
                                 out_slot=self._out_caps[u], acc_width=self._acc_width,
                                 carry_context=True, unit_lanes=self.unit_lanes[u],
                                 fixed_widths=self._fixed_widths)
            m.submodules[f"weight_store{u}"] = store
            m.submodules[f"pipeline{u}"] = pipe
            pipes.append(pipe)
            suffix = str(u) if u else ""
            m.d.comb += [
                store.entry_addr.eq(unit.entry_addr), pipe.entry.eq(store.entry),
                store.codebook_addr.eq(pipe.codebook_addr), pipe.weight.eq(store.weight),
                store.bias_addr.eq(pipe.bias_addr), pipe.bias.eq(store.bias),
                pipe.issue_valid.eq(unit.issue_valid), pipe.issue_flush.eq(unit.issue_flush),
                pipe.issue_phase.eq(unit.issue_phase),
                pipe.issue_restart.eq(unit.issue_restart), pipe.issue_pass.eq(unit.issue_pass),
                pipe.desc.eq(getattr(seq, f"udesc{u}")),
                pipe.tap_group.eq(seq.tap_group), pipe.tap_rot.eq(seq.tap_rot),
                pipe.top_ok.eq(unit.top_ok), pipe.bot_ok.eq(unit.bot_ok),
                pipe.left_ok.eq(unit.left_ok), pipe.right_ok.eq(unit.right_ok),
                pipe.sq_group.eq(unit.group), pipe.ex_group.eq(unit.group),
            ]
            if u == 0 or plain:
                m.d.comb += [getattr(loader, f"r_addr{suffix}").eq(pipe.x_addr),
                             pipe.x_data.eq(getattr(loader, f"r_data{suffix}"))]
            m.d.comb += [
                getattr(drainer, f"w_addr{suffix}").eq(pipe.o_addr),
                getattr(drainer, f"w_data{suffix}").eq(pipe.o_data),
                getattr(drainer, f"w_en{suffix}").eq(pipe.o_en),
            ]
        # The squeeze unit writes the line buffers; each expand unit reads its own, and so
        # does the squeeze unit if it also expands in some layer.
        dual = any(layer.dual for layer in self._program.units[0].layers)
        for u in (0, 1, 2) if dual else (1, 2):
            lbuf = LineBuffer(**pipes[u].line_buffer_parameters(),
                              write_blocks=self._program.passes[0])
            m.submodules[f"line_buffer{u}"] = lbuf
            writer, reader = pipes[0], pipes[u]
            m.d.comb += [
                lbuf.w_en.eq(writer.lb_w_en), lbuf.w_group.eq(writer.lb_w_group),
                lbuf.w_chan.eq(writer.lb_w_chan), lbuf.w_data.eq(writer.lb_w_data),
                lbuf.r_group.eq(reader.lb_r_group), lbuf.r_rot.eq(reader.lb_r_rot),
                lbuf.r_chan.eq(reader.lb_r_chan), lbuf.r_mask.eq(reader.lb_r_mask),
                reader.lb_r_data.eq(lbuf.r_data),
            ]
        return m
