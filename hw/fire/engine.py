"""The Fire engine: one set of pixel lanes runs squeeze, expand 1x1 and expand 3x3 of a Fire layer.

Design (see also ``../shared/DESIGN-NOTES.md``, "pixel lanes, broadcast weights"):

- ``lanes`` (P, a power of two) multipliers each own one pixel of a *group* of P consecutive
  raster pixels. Every cycle one sparse entry is read from the weight store, decoded once
  (:class:`~hw.blocks.entry_decoder.EntryDecoder`), its code looked up in the codebook, and the
  weight broadcast to all lanes; lane k multiplies it by its own pixel's activation at the entry's
  ``(channel, tap)``. Zero weights are never visited, all lanes do identical work, and the
  weight store needs a single narrow read per cycle.
- The same lanes run squeeze, expand 1x1 and expand 3x3 one after another, so the changing
  squeeze/expand balance of the Fire layers costs nothing. A plain layer (conv1 on patches,
  conv10) is one 1x1 convolution from the input buffer straight to the output buffer.
- Step ``t`` squeezes group ``t`` and then expands group ``t - A`` with ``A = ceil((W+1)/P)``:
  by then every squeezed neighbour a 3x3 window of that group needs exists. Squeezed pixels live
  in a :class:`~hw.fire.line_buffer.LineBuffer` of ``D`` groups (``D`` a power of two >= 2A+1) that
  hands every lane its 3x3 neighbour in one read; per-lane border flags give the zero padding.
- An :class:`~hw.fire.input_loader.InputLoader` fills a double-buffered group buffer from the
  ``i`` stream (W channels per cycle) while the lanes compute; an
  :class:`~hw.fire.output_drainer.OutputDrainer` empties a double-buffered result buffer to the
  ``o`` stream (W channels per cycle).

The engine only wires its components: the :class:`~hw.fire.sequencer.Sequencer` (descriptors,
run setup, entry issue), the :class:`~hw.blocks.weight_store.WeightStore`, the
:class:`~hw.fire.entry_pipeline.EntryPipeline` (decode, multiply, accumulate, requantise and
write, 19 cycles per entry, one entry per cycle; it owns the line buffer), the loader and the
drainer. Cycle counts of a whole layer are predicted exactly by :mod:`hw.fire.cycle_model`.
"""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import connect, flipped
from amaranth.utils import ceil_log2

from hw.blocks.layouts import engine_members
from hw.blocks.params import check_lanes
from hw.blocks.weight_store import DEFAULT_BANK_DEPTH, WeightStore
from hw.fire.entry_pipeline import EntryPipeline
from hw.fire.input_loader import InputLoader
from hw.fire.line_buffer import RAMS as LINE_BUFFER_RAMS
from hw.fire.output_drainer import OutputDrainer
from hw.fire.program import EngineProgram
from hw.fire.sequencer import Sequencer

__all__ = ["FireEngine", "check_parameters", "check_layers", "buffer_slots", "line_groups"]


def _pow2(n):
    return 1 << ceil_log2(max(1, n))


def check_parameters(*, lanes, channels_per_beat, acc_width=32):
    """Raise ``TypeError``/``ValueError`` unless these are valid :class:`FireEngine` parameters."""
    check_lanes(lanes)
    if not isinstance(channels_per_beat, int) or isinstance(channels_per_beat, bool):
        raise TypeError(f"Channels per beat must be an integer, not {channels_per_beat!r}")
    if not 1 <= channels_per_beat <= 64:
        raise ValueError(f"Channels per beat must be from 1 to 64, not {channels_per_beat!r}")
    if not isinstance(acc_width, int) or isinstance(acc_width, bool):
        raise TypeError(f"Accumulator width must be an integer, not {acc_width!r}")
    if not 24 <= acc_width <= 48:
        raise ValueError(f"Accumulator width must be from 24 to 48, not {acc_width!r}")


def check_layers(program):
    """``ValueError`` unless an engine can hold ``program``'s layers (at most 16, each at most
    255 x 255 and 65,535 pixels)."""
    if len(program.layers) > 16:
        raise ValueError(f"The engine holds at most 16 layers, not {len(program.layers)}")
    for layer in program.layers:
        if layer.height * layer.width > 65535 or layer.width > 255 or layer.height > 255:
            raise ValueError(f"{layer.name}: {layer.height}x{layer.width} is larger than the "
                             f"engine's 255x255 (65,535 pixel) limit")


def buffer_slots(program, channels_per_beat):
    """Words per group slot of the input buffer, the line buffer and the output buffer: powers
    of two of the widest layer's whole beats (input, output) and squeeze channels."""
    L = channels_per_beat
    return (_pow2(max(-(-f.in_channels // L) * L for f in program.layers)),
            _pow2(program.max("squeeze_channels")),
            _pow2(max(-(-f.out_channels // L) * L for f in program.layers)))


def line_groups(program, lanes, slack=0):
    """D, the line buffer's groups: a power of two of at least ``2A + 1 + slack`` for the
    widest Fire layer (``A = ceil((W+1)/P)``; only Fire layers use the line buffer)."""
    width_max = max((f.width for f in program.fires), default=1)
    reach = -(-(width_max + 1) // lanes)
    return max(2, _pow2(2 * reach + 1 + slack))


class FireEngine(wiring.Component):
    """Run any layer of an :class:`~hw.fire.program.EngineProgram`, bit-exact with
    ``golden.fixed.fire`` (Fire layers) or ``golden.fixed.conv1x1`` (plain layers).

    Parameters
    ----------
    program : EngineProgram
        Layers, descriptors and weight-store contents.
    lanes : int
        Pixel lanes (= multipliers): 1, 2, 4 or a multiple of 8, up to 1024 (powers of two
        divide by shifts; other counts by constants, :mod:`hw.blocks.const_div`).
    channels_per_beat : int
        Channels per beat of the ``i`` and ``o`` streams (L), 1 to 64.
    acc_width : int
        Accumulator width (the golden model wraps at 32 bits).
    channels_per_cycle : int
        W, channels of a pixel the input loader stores and the output drainer sends per cycle:
        a power of two dividing L, at most P (1 by default; the skewed buffers of
        :mod:`hw.fire.group_buffer` take no more block RAM, and add a W-way lane rotation).
    fixed_widths : bool
        Fire layers run only at their own width (a run of another width is rejected), so the
        line buffer rotates only for those widths (:func:`~hw.fire.line_buffer.tap_rotations`):
        at 64 lanes a third of the general rotation's logic. Off by default: with it off a
        run may be any crop of its layer.
    line_buffer_ram : str
        ``"block"`` (default) or ``"distributed"``: LUT RAM for the line buffer (see
        :class:`~hw.fire.line_buffer.LineBuffer`), where block RAM is short.

    Members
    -------
    start : In(stream.Signature(start_layout()))
        One transfer starts a run. ``height``/``width`` may be smaller than the layer's own
        (cropped windows); ``width`` must not exceed the widest layer of the program. An
        unknown layer index or a zero height/width is accepted and ignored: ``done`` pulses
        the next cycle and nothing is read or written.
    i : In(stream.Signature(beat_layout(L)))
        Input activations in raster order; each pixel's ``in_channels`` in ``ceil(Cin/L)``
        beats, zero padded. W channels are stored per cycle (a beat every L / W cycles).
        ``first``/``last`` are not needed and are ignored.
    o : Out(stream.Signature(beat_layout(L)))
        Output pixels in raster order (a Fire layer's expand 1x1 channels first),
        ``ceil(E/L)`` beats each,
        ``first``/``last`` on the first/last beat of the run.
    done : Out(1)
        One-cycle pulse after the last output beat was transferred.
    busy : Out(1)

    Raises
    ------
    TypeError, ValueError
        On a parameter of the wrong type or value.
    """

    #: Cycles from a flush token's issue until its results are written.
    DRAIN = EntryPipeline.latency

    def __init__(self, program, *, lanes=8, channels_per_beat=8, acc_width=32,
                 bank_depth=DEFAULT_BANK_DEPTH, channels_per_cycle=1, fixed_widths=False,
                 line_buffer_ram="block"):
        if not isinstance(program, EngineProgram):
            raise TypeError(f"Program must be an EngineProgram, not {program!r}")
        check_parameters(lanes=lanes, channels_per_beat=channels_per_beat,
                         acc_width=acc_width)
        check_layers(program)
        InputLoader.check_parameters(lanes, channels_per_beat, _pow2(channels_per_beat),
                                     channels_per_cycle)
        self._per_cycle = channels_per_cycle
        self._fixed_widths = bool(fixed_widths)
        if line_buffer_ram not in LINE_BUFFER_RAMS:
            raise ValueError(f"Line-buffer RAM must be one of {', '.join(LINE_BUFFER_RAMS)}, "
                             f"not {line_buffer_ram!r}")
        self._line_buffer_ram = line_buffer_ram
        self._program = program
        self.weight_store = WeightStore(program, bank_depth=bank_depth)
        self._lanes = lanes
        self._beat = channels_per_beat
        self._acc_width = acc_width
        L = channels_per_beat
        self._cin_slot, self._csq_slot, self._e_slot = buffer_slots(program, L)
        self._s_groups = line_groups(program, lanes)     # D
        super().__init__(engine_members(L))

    @property
    def program(self):
        return self._program

    @property
    def lanes(self):
        return self._lanes

    @property
    def channels_per_beat(self):
        return self._beat

    @property
    def channels_per_cycle(self):
        return self._per_cycle

    def elaborate(self, platform):
        m = Module()
        P, L, D = self._lanes, self._beat, self._s_groups
        m.submodules.weight_store = store = self.weight_store
        m.submodules.sequencer = seq = Sequencer(
            self._program, lanes=P, channels_per_beat=L, groups=D, drain=self.DRAIN,
            fixed_widths=self._fixed_widths)
        m.submodules.pipeline = pipe = EntryPipeline(
            self._program, lanes=P, groups=D, in_slot=self._cin_slot, sq_slot=self._csq_slot,
            out_slot=self._e_slot, acc_width=self._acc_width, fixed_widths=self._fixed_widths,
            line_buffer_ram=self._line_buffer_ram)
        W = self._per_cycle
        m.submodules.loader = loader = InputLoader(
            lanes=P, channels_per_beat=L, channels=self._cin_slot, channels_per_cycle=W)
        m.submodules.drainer = drainer = OutputDrainer(
            lanes=P, channels_per_beat=L, channels=self._e_slot, channels_per_cycle=W)
        connect(m, flipped(self.start), seq.start)
        connect(m, flipped(self.i), loader.i)
        connect(m, drainer.o, flipped(self.o))
        m.d.comb += [
            self.done.eq(seq.done), self.busy.eq(seq.busy),
            # sequencer -> weight store -> entry pipeline
            store.entry_addr.eq(seq.entry_addr),
            pipe.entry.eq(store.entry),
            store.codebook_addr.eq(pipe.codebook_addr), pipe.weight.eq(store.weight),
            store.bias_addr.eq(pipe.bias_addr), pipe.bias.eq(store.bias),
            # sequencer -> entry pipeline
            pipe.issue_valid.eq(seq.issue_valid), pipe.issue_flush.eq(seq.issue_flush),
            pipe.issue_phase.eq(seq.issue_phase), pipe.issue_restart.eq(seq.issue_restart),
            pipe.desc.eq(seq.desc),
            pipe.tap_group.eq(seq.tap_group), pipe.tap_rot.eq(seq.tap_rot),
            pipe.top_ok.eq(seq.top_ok), pipe.bot_ok.eq(seq.bot_ok),
            pipe.left_ok.eq(seq.left_ok), pipe.right_ok.eq(seq.right_ok),
            pipe.sq_group.eq(seq.sq_group), pipe.ex_group.eq(seq.ex_group),
            # input loader <-> sequencer, entry pipeline
            loader.go.eq(seq.go), loader.pixels.eq(seq.pixels),
            loader.beats.eq(seq.desc.cin_beats),
            seq.x_full.eq(loader.full), loader.release.eq(seq.x_release),
            loader.r_addr.eq(pipe.x_addr), pipe.x_data.eq(loader.r_data),
            # entry pipeline, sequencer -> output drainer
            drainer.go.eq(seq.go), drainer.pixels.eq(seq.pixels),
            drainer.out_channels.eq(seq.desc.e), drainer.beats.eq(seq.desc.e_beats),
            drainer.w_addr.eq(pipe.o_addr), drainer.w_data.eq(pipe.o_data),
            drainer.w_en.eq(pipe.o_en),
            seq.o_full.eq(drainer.full), drainer.fill.eq(seq.o_fill),
            seq.drained.eq(drainer.drained),
        ]
        return m
