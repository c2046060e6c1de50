"""Sequencer of the Fire engine: latches a layer's descriptor, then issues its sparse entries.

Run of a layer of H x W pixels in ``G = ceil(H*W/P)`` groups of P lanes: step ``t`` (0 <= t <
G + A, ``A = ceil((W+1)/P)``) squeezes group ``t`` (once the input loader has it) and then
expands group ``t - A`` (once the output drainer has a free slot), by which time every squeezed
neighbour its 3x3 windows need is in the line buffer. Each convolution is one entry per cycle
from the weight store, then a *flush* token, then ``drain`` cycles until the pipeline has
written its last result: only then is the input slot released (after squeeze) or the output
slot filled (after expand).

A *plain* layer (one 1x1 convolution, :class:`~hw.fire.program.PlainProgram`) has no line
buffer and no reach: step ``t`` waits for input group ``t`` and a free output slot, issues the
convolution's entries (phase 3: activations from the input buffer, results to the output
buffer), flushes, and after the drain both releases the input slot and fills the output slot.

Before the first step, the run setup computes H*W by repeated addition (H cycles, no
multiplier, so the DSP count is the lane count), each lane's column ``k mod W`` (with
``fixed_widths``, each block of lanes' first column: see :func:`~hw.blocks.row_flags.
column_flags`) and ``P mod W`` by repeated subtraction, and for every 3x3 tap the group
offset and lane rotation of its pixel (``(dy*W + dx) = m*P + r``; a shift for P a power of
two, else a division by the constant P, :mod:`hw.blocks.const_div`). Per expanded group it
sets the lanes' border flags.
"""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from hw.blocks.layouts import start_layout
from hw.blocks.const_div import divmod_constant
from hw.blocks.row_flags import column_flags, row_flags

__all__ = ["Sequencer", "column_block", "descriptor_layout"]


def descriptor_layout(program):
    """What the rest of the engine needs of the running layer's descriptor.

    ``cin``, ``csq``, ``e1``, ``e``: input, squeeze, expand-1x1 and output channels;
    ``cin_beats``/``e_beats``: beats per input/output pixel; per convolution (squeeze, expand
    1x1, expand 3x3): ``cbbase`` codebook base, ``bbase`` bias base, ``shift``, ``dbase`` the
    destination channel of its channel 0 (the expand 3x3 writes after the 1x1 channels).
    """
    max_ch = max(program.max("in_channels"), program.max("out_channels"))
    return data.StructLayout({
        "cin": range(max_ch + 1),
        "csq": range(max_ch + 1),
        "e1": range(max_ch + 1),
        "e": range(2 * max_ch + 1),
        "cin_beats": range(max_ch + 1),
        "e_beats": range(2 * max_ch + 1),
        "cbbase": data.ArrayLayout(range(len(program.codebooks) + 1), 3),
        "bbase": data.ArrayLayout(range(len(program.biases) + 1), 3),
        "shift": data.ArrayLayout(unsigned(5), 3),
        "dbase": data.ArrayLayout(range(max_ch + 1), 3),
    })


class Sequencer(wiring.Component):
    """The Fire engine's control: descriptors, run setup, and the entry issue schedule.

    Throughput: one entry issued per cycle while a convolution runs; between convolutions a
    flush token and ``drain`` cycles, plus a few control states per step (the exact count of
    every cycle is :func:`hw.fire.cycle_model.layer_cycles`). Latency from the ``start``
    transfer to ``go``: ``2 + max(H, floor(P/W))`` cycles of setup.

    Parameters
    ----------
    program : EngineProgram
    lanes : int
        P (1, 2, 4 or a multiple of 8).
    channels_per_beat : int
        L, channels per beat of the activation streams.
    groups : int
        D, the line buffer's groups (a power of two >= 2A+1 for the widest layer).
    drain : int
        Cycles from a flush token's issue until its results are written.
    fixed_widths : bool
        A Fire layer runs only at its own width; a run of another width is rejected (the
        line buffer's rotation is then built for those widths only).

    Members
    -------
    start : In(stream.Signature(start_layout()))
        One transfer starts a run; an unknown layer, a zero height/width, or (with
        ``fixed_widths``) a Fire layer at another width than its own is accepted and ignored
        (``done`` pulses the next cycle).
    done : Out(1)
        One-cycle pulse at the end of a run (once ``drained``).
    busy : Out(1)
    desc : Out(descriptor_layout(program))
    entry_addr : Out(range(entries))
        Weight-store address of the entry issued this cycle.
    issue_valid, issue_flush : Out(1)
        An entry, or the flush token that ends a convolution, is issued this cycle.
    issue_phase : Out(2)
        0 squeeze, 1 expand 1x1, 2 expand 3x3, 3 a plain layer's convolution.
    issue_restart : Out(1)
        The entry is the first of its convolution.
    tap_group : Out(ArrayLayout(range(D), 9))
    tap_rot : Out(ArrayLayout(unsigned(max(1, log2 P)), 9))
        Per 3x3 tap: group offset (mod D) and lane rotation of its pixel.
    top_ok, bot_ok, left_ok, right_ok : Out(P)
        Per lane of the group being expanded: a row above / below, a column left / right.
    sq_group, ex_group : Out(range(D))
        The group being squeezed / expanded, mod D (bit 0 is its buffer slot).
    go : Out(1)
        Pulse: the loader and the drainer start a run of ``pixels`` pixels.
    pixels : Out(16)
    x_full : In(2); x_release : Out(2)
        Input slots holding a whole group; pulse: slot done with.
    o_full : In(2); o_fill : Out(2)
        Output slots not yet drained; pulse: slot written.
    drained : In(1)
        The drainer has sent the whole run.
    """

    def __init__(self, program, *, lanes, channels_per_beat, groups, drain, fixed_widths=False):
        self._program = program
        self._fixed_widths = bool(fixed_widths)
        self._col_block = column_block(program, lanes, fixed_widths)
        self._lanes, self._beat = lanes, channels_per_beat
        self._groups, self._drain = groups, drain
        rot_bits = max(1, ceil_log2(lanes))
        super().__init__({
            "start": In(stream.Signature(start_layout())),
            "done": Out(1),
            "busy": Out(1),
            "desc": Out(descriptor_layout(program)),
            "entry_addr": Out(range(max(2, len(program.entries)))),
            "issue_valid": Out(1),
            "issue_flush": Out(1),
            "issue_phase": Out(2),
            "issue_restart": Out(1),
            "tap_group": Out(data.ArrayLayout(range(groups), 9)),
            "tap_rot": Out(data.ArrayLayout(unsigned(rot_bits), 9)),
            "top_ok": Out(lanes), "bot_ok": Out(lanes),
            "left_ok": Out(lanes), "right_ok": Out(lanes),
            "sq_group": Out(range(groups)),
            "ex_group": Out(range(groups)),
            "go": Out(1),
            "pixels": Out(16),
            "x_full": In(2), "x_release": Out(2),
            "o_full": In(2), "o_fill": Out(2),
            "drained": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        P = self._lanes
        n_entries = max(1, len(self._program.entries))
        r = _Registers(P, n_entries, self._drain, self._col_block)
        cur_base = Mux(self.issue_phase == 0, r.base[0],
                       Mux(self.issue_phase == 1, r.base[1], r.base[2]))
        m.d.comb += [
            self.entry_addr.eq(cur_base + r.j),
            self.sq_group.eq(r.step),
            self.ex_group.eq(r.egroup),
            self.busy.eq(~self.start.ready),
        ]
        with m.FSM():
            self._accept_states(m, r)
            self._setup_states(m, r)
            self._step_states(m, r)
        # done from registers of its own (set and cleared with the FINISH and REJECT states),
        # not from the state decode: through the engine's users it was an ECP5 critical path.
        m.d.comb += self.done.eq((r.finishing & self.drained) | r.rejecting)
        return m

    def _accept_states(self, m, r):
        """IDLE: take a ``start`` and latch the layer's descriptor; REJECT a bad one."""
        prog, run = self._program, self.start.payload
        with m.State("IDLE"):
            m.d.comb += self.start.ready.eq(1)
            with m.If(self.start.valid):
                m.d.sync += [r.height.eq(run.height), r.width.eq(run.width)]
                width_ok = Signal(init=1)
                with m.Switch(run.layer):
                    for index, layer in enumerate(prog.layers):
                        with m.Case(index):
                            m.d.sync += self._latch(layer, r)
                            if self._fixed_widths and layer.is_fire:
                                m.d.comb += width_ok.eq(run.width == layer.width)
                with m.If((run.layer < len(prog.layers)) & (run.height != 0) &
                          (run.width != 0) & width_ok):
                    m.next = "LATCH"
                with m.Else():
                    m.d.sync += r.rejecting.eq(1)
                    m.next = "REJECT"
        with m.State("REJECT"):
            m.d.sync += r.rejecting.eq(0)
            m.next = "IDLE"

    def _latch(self, layer, r):
        """Statements that load ``layer``'s descriptor (a plain layer's one convolution fills
        all three convolution slots, so phase 3 may read any of them)."""
        L = self._beat
        d = self.desc
        e = layer.out_channels
        convs = layer.convs * 3 if not layer.is_fire else layer.convs
        e1 = convs[1].out_channels if layer.is_fire else e
        stmts = [d.cin.eq(layer.in_channels), d.csq.eq(layer.squeeze_channels),
                 d.e1.eq(e1), d.e.eq(e), r.plain.eq(not layer.is_fire),
                 d.cin_beats.eq(-(-layer.in_channels // L)), d.e_beats.eq(-(-e // L))]
        for k, conv in enumerate(convs):
            stmts += [r.base[k].eq(conv.entry_base), r.count[k].eq(conv.entry_count),
                      d.cbbase[k].eq(conv.codebook_base), d.bbase[k].eq(conv.bias_base),
                      d.shift[k].eq(conv.shift),
                      d.dbase[k].eq(e1 if layer.is_fire and k == 2 else 0)]
        return stmts

    def _setup_states(self, m, r):
        """LATCH: tap table, lane columns; INIT: H*W, k mod W and P mod W, then ``go``."""
        P = self._lanes
        with m.State("LATCH"):
            m.d.sync += [self.pixels.eq(0), r.rows_left.eq(r.height), r.col_step.eq(P),
                         r.rows_done.eq(0), r.col_done.eq(P < r.width)]
            for tap in range(9):
                ky, kx = divmod(tap, 3)
                off = Signal(signed(18), name=f"tap_offset{tap}")
                row = {0: -r.width, 1: 0, 2: r.width}[ky]
                m.d.comb += off.eq(row + (kx - 1))
                group, rot = divmod_constant(off, P, -256, 256)
                m.d.sync += [self.tap_group[tap].eq(group), self.tap_rot[tap].eq(rot)]
            m.d.sync += [c.eq(b * r.col_block) for b, c in enumerate(r.col)]
            m.next = "INIT"
        with m.State("INIT"):
            m.d.sync += [
                r.groups.eq(divmod_constant(self.pixels + (P - 1), P, 0, 65535 + P)[0]),
                r.reach.eq(Mux(r.plain, 0, divmod_constant(r.width + P, P, 0, 255 + P)[0])),
                r.step.eq(0),
            ]
            # rows_done and col_done are ``rows_left == 0`` and ``col_step < width`` as
            # registers set a cycle ahead: the compare's carry chain into ``go`` (the loader's
            # and drainer's resets) was the 64-multiplier dataflow build's critical path.
            with m.If(~r.rows_done):
                m.d.sync += [self.pixels.eq(self.pixels + r.width),
                             r.rows_left.eq(r.rows_left - 1), r.rows_done.eq(r.rows_left == 1)]
            with m.If(~r.col_done):
                m.d.sync += [r.col_step.eq(r.col_step - r.width),
                             r.col_done.eq(r.col_step - r.width < r.width)]
                for c in r.col:
                    with m.If(c >= r.width):
                        m.d.sync += c.eq(c - r.width)
            with m.If(r.rows_done & r.col_done):
                m.d.comb += self.go.eq(1)
                m.next = "STEP"

    def _step_states(self, m, r):
        """One step: squeeze group ``step``, then expand group ``step - reach``."""
        with m.State("STEP"):
            m.d.sync += [r.egroup.eq(r.step - r.reach),
                         r.pixels_above.eq(self.pixels - r.width)]
            with m.If(r.plain):
                m.next = "PL_WAIT"
            with m.Elif(r.step < r.groups):
                m.next = "SQ_WAIT"
            with m.Else():
                m.next = "EXP_CHECK"
        with m.State("SQ_WAIT"):
            m.d.sync += [r.j.eq(0), r.last.eq(r.count[0] == 1), self.issue_phase.eq(0)]
            with m.If(self.x_full.bit_select(r.step[0], 1)):
                m.next = "SQ_ISSUE"
        self._issue_state(m, r, "SQ_ISSUE", r.count[0], "SQ_FLUSH")
        self._flush_states(m, r, "SQ", self.x_release.eq(Mux(r.step[0], 0b10, 0b01)),
                           "EXP_CHECK")
        with m.State("EXP_CHECK"):
            with m.If(r.step >= r.reach):
                m.next = "EXP_WAIT"
            with m.Else():
                m.next = "NEXT"
        with m.State("EXP_WAIT"):
            m.d.sync += [r.j.eq(0), r.last.eq(r.count[1] == 1), self.issue_phase.eq(1)]
            with m.If(~self.o_full.bit_select(r.egroup[0], 1)):
                m.next = "EXP_SETUP"
        with m.State("EXP_SETUP"):
            self._border_flags(m, r)
            m.next = "E1_ISSUE"
        self._issue_state(m, r, "E1_ISSUE", r.count[1], "E3_ISSUE",
                          [r.j.eq(0), r.last.eq(r.count[2] == 1), self.issue_phase.eq(2)])
        self._issue_state(m, r, "E3_ISSUE", r.count[2], "EXP_FLUSH")
        self._flush_states(m, r, "EXP", self.o_fill.eq(Mux(r.egroup[0], 0b10, 0b01)), "NEXT")
        self._plain_states(m, r)
        with m.State("NEXT"):
            m.d.sync += r.step.eq(r.step + 1)
            with m.If(r.step + 1 == r.groups + r.reach):
                m.d.sync += r.finishing.eq(1)
                m.next = "FINISH"
            with m.Else():
                m.next = "STEP"
        with m.State("FINISH"):
            with m.If(self.drained):
                m.d.sync += r.finishing.eq(0)
                m.next = "IDLE"

    def _plain_states(self, m, r):
        """A plain layer's step: input group ``step`` -> output slot of the same parity."""
        slot = r.step[0]
        with m.State("PL_WAIT"):
            m.d.sync += [r.j.eq(0), r.last.eq(r.count[0] == 1), self.issue_phase.eq(3)]
            with m.If(self.x_full.bit_select(slot, 1) & ~self.o_full.bit_select(slot, 1)):
                m.next = "PL_ISSUE"
        self._issue_state(m, r, "PL_ISSUE", r.count[0], "PL_FLUSH")
        self._flush_states(m, r, "PL", [self.x_release.eq(Mux(slot, 0b10, 0b01)),
                                        self.o_fill.eq(Mux(slot, 0b10, 0b01))], "NEXT")

    def _border_flags(self, m, r):
        """Per lane of group ``egroup``: which 3x3 neighbours lie inside the image."""
        P = self._lanes
        top, bottom = row_flags(m, r.egroup, P, r.width, r.pixels_above)
        B = self._col_block
        for b, col in enumerate(r.col):
            left, right = column_flags(m, col, B, r.width)
            m.d.sync += [self.left_ok[b * B + j].eq(left[j]) for j in range(B)]
            m.d.sync += [self.right_ok[b * B + j].eq(right[j]) for j in range(B)]
            advanced = col + r.col_step
            m.d.sync += col.eq(Mux(advanced >= r.width, advanced - r.width, advanced))
        for k in range(P):
            m.d.sync += [self.top_ok[k].eq(top[k]), self.bot_ok[k].eq(bottom[k])]

    def _issue_state(self, m, r, name, count, then, after=()):
        """Issue one entry per cycle, ``count`` in all, then go to ``then``. ``r.last`` (this
        entry is the last) is a register set a cycle ahead, with ``j = 0`` on the way in: the
        add and compare before the state change was the 32-lane ULX3S build's critical path."""
        with m.State(name):
            m.d.comb += [self.issue_valid.eq(1), self.issue_restart.eq(r.j == 0)]
            m.d.sync += [r.j.eq(r.j + 1), r.last.eq(r.j + 2 == count)]
            with m.If(r.last):
                m.d.sync += after
                m.next = then

    def _flush_states(self, m, r, prefix, release, then):
        """Issue the flush token, wait until its results are written, then ``release``."""
        with m.State(f"{prefix}_FLUSH"):
            m.d.comb += self.issue_flush.eq(1)
            m.d.sync += r.wait.eq(self._drain - 1)
            m.next = f"{prefix}_DRAIN"
        with m.State(f"{prefix}_DRAIN"):
            m.d.sync += r.wait.eq(r.wait - 1)
            with m.If(r.wait == 0):
                m.d.comb += release
                m.next = then


def column_block(program, lanes, fixed_widths):
    """Lanes sharing one column counter: a power of two dividing P and no wider than any run
    (a run of a Fire layer is its layer's width with ``fixed_widths``, else may be 1 pixel
    wide, so 1 then)."""
    widths = [layer.width for layer in program.layers if layer.is_fire]
    block = 1
    while (fixed_widths and widths and block * 2 <= min(lanes, *widths)
           and lanes % (block * 2) == 0):
        block *= 2
    return block


class _Registers:
    """The sequencer's state registers other than its ports."""

    def __init__(self, P, n_entries, drain, col_block=1):
        self.height, self.width = Signal(8, name="height"), Signal(8, name="width")
        self.plain = Signal(name="plain")  # the run is a plain layer
        # Entry base and count of the run's squeeze, expand 1x1 and expand 3x3.
        self.base = [Signal(range(n_entries + 1), name=f"base{j}") for j in range(3)]
        self.count = [Signal(range(n_entries + 1), name=f"count{j}") for j in range(3)]
        self.rows_left = Signal(8)
        self.groups = Signal(range((1 << 16) // P + 2))
        self.reach = Signal(range(256 // P + 3))
        self.step = Signal(range((1 << 16) // P + 256 // P + 4))
        self.egroup = Signal.like(self.step, name="egroup")  # step - reach, set in STEP
        # Pixels minus one row: a pixel below this index has a row below it.
        self.pixels_above = Signal(17)
        # First column of each block of col_block lanes (every lane's own when it is 1).
        self.col = [Signal(range(max(P, 256)), name=f"col{k}") for k in range(P // col_block)]
        self.col_block = col_block
        self.col_step = Signal(range(P + 1))  # P mod W after INIT
        self.rows_done = Signal(name="rows_done")   # rows_left == 0 (INIT)
        self.col_done = Signal(name="col_done")     # col_step < width (INIT)
        self.j = Signal(range(n_entries + 1))
        self.last = Signal(name="last")    # entry j is the issue state's last
        self.wait = Signal(range(drain + 1))
        self.finishing = Signal(name="finishing")   # in FINISH
        self.rejecting = Signal(name="rejecting")   # in REJECT
