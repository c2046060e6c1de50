"""Step engine: any chosen steps of a whole network, one step per ``start``, behind the Fire
engine's ports, for boards whose activation store would not fit: the host keeps the maps and
sends each step its input.

Blocks and the paths between them (chosen per run by the step's descriptor)::

    i --(first step)--> PatchStreamer --+
    i --(other steps)-------------------+--> FireEngine --+--(pooled)--> MaxPool -------------+
                                                          +--(last step)--> GlobalSum         +--> o
                                                          |                 --> LogitPacker --+
                                                          +-----------------------------------+

Only the blocks some chosen step needs are built: the patch streamer when the first network
step (conv1) is chosen, the pool when a chosen step pools (sized for those steps), the global
sum and logit packer when the last network step is chosen.
"""

import contextlib

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring

from hw.blocks.layouts import engine_members
from hw.blocks.signals import delay
from hw.blocks.weight_store import DEFAULT_BANK_DEPTH
from hw.arch import SHARED
from hw.network.global_sum import GlobalSum
from hw.network.logit_packer import LogitPacker
from hw.network.max_pool import MaxPool, pooled_size
from hw.network.patch_runs import patch_streamer
from hw.network.program import IMAGE_CHANNELS, NetworkProgram

__all__ = ["StepEngine"]


class StepEngine(wiring.Component):
    """Run one chosen step of a :class:`~hw.network.program.NetworkProgram` per ``start``,
    bit-exact with ``golden.fixed``: the step's input map in on ``i``, its output map (after its
    fused pool) or the network's logits out on ``o``.

    Latency: the engine's ``start`` is offered the cycle after ``start`` is taken; ``done``
    pulses the cycle after the run's last ``o`` transfer, or with the engine's own ``done`` if
    that comes later (for the first network step, also not before the image's last pixel is
    taken: rows below the last patch too, so none is left over for the next run). Throughput:
    one step at a time; an engine run takes the cycles of :mod:`hw.fire.cycle_model` when ``i``
    keeps up and ``o`` is ready (the pool and the logit packer only lag behind the engine).

    Parameters
    ----------
    program : NetworkProgram
    steps : sequence of str
        Names of the steps to build, a non-empty subset of the program's, in any order; they
        are kept in network order.
    lanes : int
        Engine lanes (multipliers): 1, 2, 4 or a multiple of 8.
    acc_width, bank_depth : int
        As for :class:`~hw.fire.engine.FireEngine`.
    arch : hw.arch.Arch
        The engine's datapath: the shared-lane engine (default) or the dataflow one (its
        ``lanes`` is then the group size).

    Members
    -------
    start : In(stream.Signature(start_layout()))
        Taken only while idle. ``layer`` is the index ``k`` of the step in :attr:`step_names`
        (an index out of range is not supported); ``height``/``width`` are ignored: every
        step's geometry is the program's.
    i : In(stream.Signature(beat_layout(L)))
        The step's input map in raster order, ``ceil(Cin/L)`` beats per pixel; for the first
        network step the image, one beat per pixel, B, G, R in its first three bytes.
        ``first``/``last`` are ignored; taken only while busy.
    o : Out(stream.Signature(beat_layout(L)))
        The step's output map (after its pool), ``ceil(E/L)`` beats per pixel; for the last
        network step the logits as 4 little-endian bytes each, packed into beats
        (:class:`~hw.network.logit_packer.LogitPacker`). ``first``/``last`` framed per run.
    done : Out(1)
        Pulses once per run, after its last ``o`` transfer.
    busy : Out(1)
        From the cycle after ``start`` is taken up to and including the ``done`` pulse.

    Raises
    ------
    TypeError
        If ``program`` is not a NetworkProgram, or a step name is not a string.
    ValueError
        If ``steps`` is empty, names a step the program does not have, or names one twice.
    """

    def __init__(self, program, steps, *, lanes=8, acc_width=32,
                 bank_depth=DEFAULT_BANK_DEPTH, arch=SHARED):
        if not isinstance(program, NetworkProgram):
            raise TypeError(f"Program must be a NetworkProgram, not {program!r}")
        self._program = program
        self._steps = self._select(program, steps)
        L = program.channels_per_beat
        self.arch = arch
        # Every step runs at its layer's own size (its descriptor's), so the engine's line
        # buffer need only rotate for the network's map widths.
        self.engine = arch.engine(program.program_for(arch, self.step_names), lanes=lanes,
                                  channels_per_beat=L, acc_width=acc_width,
                                  bank_depth=bank_depth, fixed_widths=True)
        super().__init__(engine_members(L))

    @staticmethod
    def _select(program, steps):
        """The program's steps named in ``steps``, in network order."""
        valid = [s.name for s in program.steps]
        if isinstance(steps, str):
            raise TypeError(f"Steps must be a sequence of step names, not {steps!r}")
        steps = list(steps)
        for name in steps:
            if not isinstance(name, str):
                raise TypeError(f"Step names must be strings, not {name!r}")
        if not steps:
            raise ValueError(f"Steps must name at least one of {', '.join(valid)}")
        unknown = [name for name in steps if name not in valid]
        if unknown:
            raise ValueError(f"Unknown step {', '.join(map(repr, unknown))}; the steps are "
                             f"{', '.join(valid)}")
        repeated = sorted({name for name in steps if steps.count(name) > 1}, key=valid.index)
        if repeated:
            raise ValueError(f"Step {', '.join(map(repr, repeated))} named more than once; the "
                             f"steps are {', '.join(valid)}")
        return tuple(s for s in program.steps if s.name in steps)

    @property
    def program(self):
        return self._program

    @property
    def step_names(self):
        """Names of the chosen steps in network order; ``start.layer`` indexes this."""
        return tuple(s.name for s in self._steps)

    @property
    def lanes(self):
        return self.engine.lanes

    @property
    def link_layers(self):
        """Per chosen step, ``(cin, e, in_h, in_w, out_h, out_w)``: the maps the host link
        moves (the last network step's output is the logits, one pixel of 4*classes bytes)."""
        prog = self._program
        layers = []
        for s in self._steps:
            in_h, in_w, cin = prog.input_shape(s)
            if s is prog.steps[-1]:
                layers.append((cin, 4 * prog.classes, in_h, in_w, 1, 1))
            else:
                layers.append((cin, s.out_channels, in_h, in_w, s.out_height, s.out_width))
        return tuple(layers)

    def elaborate(self, platform):
        m = Module()
        prog = self._program
        L = prog.channels_per_beat
        m.submodules.engine = engine = self.engine
        desc = self._descriptor(m)
        running = Signal()
        self._control(m, desc, running)
        # i -> patch streamer -> engine (the image), or i -> engine
        if prog.steps[0] in self._steps:
            m.submodules.patches = patches = self._patch_streamer()
            first = prog.steps[0]
            m.d.comb += [patches.width.eq(prog.input_size), patches.height.eq(prog.input_size),
                         patches.out_height.eq(first.height), patches.out_width.eq(first.width)]
            with m.If(desc["from_image"]):
                self._route(m, self.i, patches.i, running)
                with m.If(desc["image_took"]):
                    m.d.sync += desc["image_left"].eq(desc["image_left"] - 1)
                self._route(m, patches.o, engine.i)
            with m.Else():
                self._route(m, self.i, engine.i, running)
        else:
            self._route(m, self.i, engine.i, running)
        # engine -> pool -> o, engine -> global sum -> packer -> o, or engine -> o
        paths = []
        pooled = [s for s in self._steps if s.pool]
        if pooled:
            m.submodules.pool = pool = MaxPool(
                channels_per_beat=L, max_width=max(s.width for s in pooled),
                max_beats=max(prog.beats(s.out_channels) for s in pooled))
            m.d.comb += [pool.height.eq(desc["height"]), pool.width.eq(desc["width"]),
                         pool.beats.eq(desc["pool_beats"]),
                         pool.row_beats.eq(desc["pool_row_beats"])]
            paths.append((desc["pool"], pool.i, pool.o))
        if prog.steps[-1] in self._steps:
            m.submodules.global_sum = gsum = GlobalSum(
                channels=prog.classes, channels_per_beat=L, offsets=prog.sum_offsets)
            m.submodules.packer = packer = LogitPacker(channels_per_beat=L)
            wiring.connect(m, gsum.o, packer.i)
            paths.append((desc["to_sum"], gsum.i, packer.o))
        for n, (chosen, into, out) in enumerate(paths):
            with (m.Elif if n else m.If)(chosen):
                self._route(m, engine.o, into)
                self._route(m, out, self.o)
        with m.Else() if paths else contextlib.nullcontext():
            self._route(m, engine.o, self.o)
        return m

    @staticmethod
    def _route(m, src, dst, enable=1):
        """``src`` -> ``dst`` (streams), as ``connect`` would but only under the current
        condition, and transfers only while ``enable``."""
        m.d.comb += [dst.payload.eq(src.payload), dst.valid.eq(src.valid & enable),
                     src.ready.eq(dst.ready & enable)]

    def _patch_streamer(self):
        return patch_streamer(self._program)

    def _descriptor(self, m):
        """The running step's descriptor registers, latched when ``start`` is taken (one
        ``Case`` per chosen step), and the patch streamer's constants."""
        desc = {name: Signal(16, name=f"desc_{name}")
                for name in ("height", "width", "pool_beats", "pool_row_beats")}
        desc.update({name: Signal(name=f"desc_{name}") for name in ("from_image", "pool",
                                                                    "to_sum")})
        desc["layer"] = Signal(4, name="desc_layer")
        prog = self._program
        # Image pixels still to take: a run on the image ends only when the whole image is in,
        # even rows below the last patch (when (size - K) is not a multiple of S), so that none
        # is left over for the next run.
        pixels = prog.input_size ** 2
        desc["image_left"] = Signal(range(pixels + 1), name="desc_image_left")
        # The count is decremented a cycle after each transfer (the handshake straight into
        # its 16-bit decrement was the ECP5 build's critical path); ``image_in`` is what the
        # count would be without that delay.
        desc["image_took"] = delay(m, self.i.valid & self.i.ready, 1, "desc_image_took")
        desc["image_in"] = Signal(name="desc_image_in")
        m.d.comb += desc["image_in"].eq((desc["image_left"] == 0) |
                                        ((desc["image_left"] == 1) & desc["image_took"]))
        with m.If(self.start.valid & self.start.ready):
            m.d.sync += desc["layer"].eq(self.start.payload.layer)
            with m.Switch(self.start.payload.layer):
                for k, s in enumerate(self._steps):
                    with m.Case(k):
                        beats = prog.beats(s.out_channels)
                        m.d.sync += [
                            desc["height"].eq(s.height), desc["width"].eq(s.width),
                            desc["from_image"].eq(s is prog.steps[0]),
                            desc["image_left"].eq(pixels if s is prog.steps[0] else 0),
                            desc["to_sum"].eq(s is prog.steps[-1]),
                            desc["pool"].eq(s.pool), desc["pool_beats"].eq(beats),
                            desc["pool_row_beats"].eq(pooled_size(s.width) * beats
                                                      if s.pool else 0),
                        ]
        return desc

    def _control(self, m, desc, running):
        """IDLE takes ``start``; LAUNCH starts the engine; RUN waits for the engine's ``done``
        and the run's last ``o`` transfer, then pulses ``done``. ``running`` (LAUNCH or RUN)
        is a register of its own, set and cleared with the state: it gates the input stream,
        and decoding it from the state was the head of the ECP5 build's critical path."""
        engine = self.engine
        engine_seen, out_seen = Signal(), Signal()
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.start.ready.eq(1)
                with m.If(self.start.valid):
                    m.d.sync += [engine_seen.eq(0), out_seen.eq(0), running.eq(1)]
                    m.next = "LAUNCH"
            with m.State("LAUNCH"):
                m.d.comb += [engine.start.valid.eq(1),
                             engine.start.payload.layer.eq(desc["layer"]),
                             engine.start.payload.height.eq(desc["height"]),
                             engine.start.payload.width.eq(desc["width"])]
                with m.If(engine.start.ready):
                    m.next = "RUN"
            with m.State("RUN"):
                with m.If(engine.done):
                    m.d.sync += engine_seen.eq(1)
                with m.If(self.o.valid & self.o.ready & self.o.payload.last):
                    m.d.sync += out_seen.eq(1)
                with m.If(out_seen & (engine_seen | engine.done) & desc["image_in"]):
                    m.d.comb += self.done.eq(1)
                    m.d.sync += running.eq(0)
                    m.next = "IDLE"
        m.d.comb += self.busy.eq(running)
