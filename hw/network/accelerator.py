"""The whole-network accelerator: ``start``, the image in, the class logits out, no host.

Blocks and the paths between them (selected per step by the
:class:`~hw.network.sequencer.NetworkSequencer`)::

    image i -> PatchStreamer --(conv1)--+
                                        +--> FireEngine --+--> MaxPool --+--> ActivationStore
    ActivationStore --(other steps)-----+                 +--------------+  (after the input)
                                                          +--(last)--> GlobalSum --> logits o

Weights live in the engine's weight store, activations between layers in the activation store;
nothing leaves the chip but the logits.
"""

from amaranth.hdl import Module, Mux
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hw.blocks.layouts import beat_layout
from hw.blocks.weight_store import DEFAULT_BANK_DEPTH
from hw.arch import SHARED
from hw.network.activation_store import ActivationStore
from hw.network.global_sum import GlobalSum, logit_layout
from hw.network.cycle_model import check_channels_per_cycle
from hw.network.max_pool import MaxPool
from hw.network.patch_runs import patch_streamer
from hw.network.program import IMAGE_CHANNELS, NetworkProgram
from hw.network.sequencer import NetworkSequencer

__all__ = ["NetworkAccelerator"]


class NetworkAccelerator(wiring.Component):
    """Classify one image: bit-exact ``golden.fixed`` global sums of a whole SqueezeNet.

    Throughput: one image at a time; its cycles are :func:`hw.network.cycle_model.network_cycles`.
    Latency: the first logit leaves after the last layer's last output beat has been summed.

    Parameters
    ----------
    program : NetworkProgram
    lanes : int
        Engine lanes (multipliers): 1, 2, 4 or a multiple of 8.
    acc_width, bank_depth : int
        As for :class:`~hw.fire.engine.FireEngine`.
    arch : hw.arch.Arch
        The engine's datapath: the shared-lane engine (default) or the dataflow one (its
        ``lanes`` is then the group size).

    Members
    -------
    start : In(1)
        Pulse while not ``busy``: classify the image that follows on ``i``.
    i : In(stream.Signature(beat_layout(L)))
        Image pixels in raster order, B, G, R in the first three bytes of a beat
        (``first``/``last`` are ignored); taken only while the first step (conv1) runs.
    o : Out(stream.Signature(logit_layout()))
        One signed 32-bit global sum per class, ``last`` on the last.
    busy : Out(1); done : Out(1)
        ``done`` pulses after the last logit has left.
    trace_valid : Out(1); trace_step : Out(range(steps)); trace_data : Out(8 * L)
        Only with ``trace``: every beat the engine sends (before any pool), with the step that
        sends it, one cycle after it is sent, so that a testbench can compare each layer with
        the golden model.
    """

    def __init__(self, program, *, lanes=8, acc_width=32, bank_depth=DEFAULT_BANK_DEPTH,
                 trace=False, arch=SHARED):
        if not isinstance(program, NetworkProgram):
            raise TypeError(f"Program must be a NetworkProgram, not {program!r}")
        self._program = program
        L = program.channels_per_beat
        self.arch = arch
        check_channels_per_cycle(lanes, L, arch.channels_per_cycle)
        # Every step runs at its layer's own size, so the engine's line buffer need only
        # rotate for the network's map widths.
        self.engine = arch.engine(program.program_for(arch), lanes=lanes, channels_per_beat=L,
                                  acc_width=acc_width, bank_depth=bank_depth, fixed_widths=True)
        self.store = ActivationStore(channels_per_beat=L, words=program.store_words)
        self._trace = trace
        ports = {
            "start": In(1),
            "i": In(stream.Signature(beat_layout(L))),
            "o": Out(stream.Signature(logit_layout())),
            "busy": Out(1),
            "done": Out(1),
        }
        if trace:
            ports.update({"trace_valid": Out(1), "trace_step": Out(range(len(program.steps))),
                          "trace_data": Out(8 * L)})
        super().__init__(ports)

    @property
    def program(self):
        return self._program

    @property
    def lanes(self):
        return self.engine.lanes

    def elaborate(self, platform):
        m = Module()
        prog = self._program
        L = prog.channels_per_beat
        steps = prog.steps
        pooled = [s for s in steps if s.pool] or steps[:1]
        m.submodules.engine = engine = self.engine
        m.submodules.store = store = self.store
        m.submodules.sequencer = seq = NetworkSequencer(prog)
        m.submodules.patches = patches = patch_streamer(prog)
        m.submodules.pool = pool = MaxPool(
            channels_per_beat=L, max_width=max(3, max(s.width for s in pooled)),
            max_beats=max(prog.beats(s.out_channels) for s in pooled))
        m.submodules.global_sum = gsum = GlobalSum(
            channels=prog.classes, channels_per_beat=L, offsets=prog.sum_offsets)

        wiring.connect(m, seq.engine_start, engine.start)
        first = steps[0]
        m.d.comb += [
            seq.start.eq(self.start), self.busy.eq(seq.busy), self.done.eq(seq.done),
            seq.engine_done.eq(engine.done),
            # image -> patch streamer, only while conv1 runs
            patches.i.payload.eq(self.i.payload),
            patches.i.valid.eq(self.i.valid & seq.busy & seq.from_image),
            self.i.ready.eq(patches.i.ready & seq.busy & seq.from_image),
            patches.width.eq(prog.input_size), patches.height.eq(prog.input_size),
            patches.out_height.eq(first.height), patches.out_width.eq(first.width),
            # patch streamer or store -> engine
            engine.i.valid.eq(Mux(seq.from_image, patches.o.valid, store.o.valid)),
            engine.i.payload.eq(Mux(seq.from_image, patches.o.payload, store.o.payload)),
            patches.o.ready.eq(engine.i.ready & seq.from_image),
            store.o.ready.eq(engine.i.ready & ~seq.from_image),
            # store control
            store.read.eq(seq.read), store.read_base.eq(seq.read_base),
            store.read_words.eq(seq.read_words),
            store.write.eq(seq.write), store.write_base.eq(seq.write_base),
            seq.written.eq(store.written),
            # engine -> pool -> store, engine -> store, or engine -> global sum
            pool.height.eq(seq.pool_height), pool.width.eq(seq.pool_width),
            pool.beats.eq(seq.pool_beats), pool.row_beats.eq(seq.pool_row_beats),
            pool.i.payload.eq(engine.o.payload),
            pool.i.valid.eq(engine.o.valid & seq.pool),
            gsum.i.payload.eq(engine.o.payload),
            gsum.i.valid.eq(engine.o.valid & seq.to_sum),
            engine.o.ready.eq(Mux(seq.pool, pool.i.ready,
                                  Mux(seq.to_sum, gsum.i.ready, store.i.ready))),
            store.i.valid.eq(Mux(seq.pool, pool.o.valid, engine.o.valid & ~seq.to_sum)),
            store.i.payload.eq(Mux(seq.pool, pool.o.payload, engine.o.payload)),
            pool.o.ready.eq(store.i.ready),
            # global sum -> logits
            self.o.payload.eq(gsum.o.payload), self.o.valid.eq(gsum.o.valid),
            gsum.o.ready.eq(self.o.ready),
        ]
        if self._trace:
            # Registered: a debug port adds no combinational path.
            m.d.sync += [self.trace_valid.eq(engine.o.valid & engine.o.ready),
                         self.trace_step.eq(seq.step), self.trace_data.eq(engine.o.payload.data)]
        with m.If(seq.engine_start.valid & seq.engine_start.ready):
            m.d.sync += seq.summed.eq(0)
        with m.If(self.o.valid & self.o.ready & self.o.payload.last):
            m.d.sync += seq.summed.eq(1)
        return m
