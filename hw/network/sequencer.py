"""Network sequencer: runs the steps of a :class:`~hw.network.program.NetworkProgram` back to
back, each an engine run with its source, sink and pool set up.

Per step: LOAD latches the step's descriptor (a table built at elaboration, one ``Case`` per
step), LAUNCH hands the engine its ``start`` (layer, height, width) and in the same cycle
pulses the store's ``read`` (unless the source is the image) and ``write``; RUN waits until the
engine's ``done`` has pulsed and the step's sink has taken its last beat (the store's
``written``, or the last logit leaving the global sum). After the last step ``done`` pulses.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hw.blocks.layouts import start_layout
from hw.network.max_pool import pooled_size

__all__ = ["NetworkSequencer"]


class NetworkSequencer(wiring.Component):
    """Step control of the whole network.

    Latency: an engine ``start`` is offered 2 cycles after ``start`` (or after the previous
    step's RUN ends); a step ends the cycle after both the engine's ``done`` and the sink's
    flag were seen. Throughput: one step at a time.

    Parameters
    ----------
    program : NetworkProgram

    Members
    -------
    start : In(1)
        Pulse while idle: run the network once.
    busy : Out(1); done : Out(1)
        ``done`` pulses once the last step has ended.
    step : Out(range(steps)); from_image : Out(1); to_sum : Out(1)
        The running step; its source is the image; its sink is the global sum.
    engine_start : Out(stream.Signature(start_layout()))
    engine_done : In(1)
    read, write : Out(1)
        Pulses to the activation store, with ``read_base``, ``read_words`` and
        ``write_base`` steady during the step.
    written, summed : In(1)
        The store has taken the step's last word; the last logit has left.
    pool : Out(1); pool_height, pool_width, pool_beats, pool_row_beats : Out(16)
        The step's output is pooled, and the pool's parameters.
    """

    def __init__(self, program):
        self._program = program
        steps = program.steps
        depth = program.store_words
        super().__init__({
            "start": In(1), "busy": Out(1), "done": Out(1),
            "step": Out(range(len(steps))),
            "from_image": Out(1), "to_sum": Out(1),
            "engine_start": Out(stream.Signature(start_layout())),
            "engine_done": In(1),
            "read": Out(1), "read_base": Out(range(depth)),
            "read_words": Out(range(depth + 1)),
            "write": Out(1), "write_base": Out(range(depth)),
            "written": In(1), "summed": In(1),
            "pool": Out(1), "pool_height": Out(16), "pool_width": Out(16),
            "pool_beats": Out(16), "pool_row_beats": Out(16),
        })

    def elaborate(self, platform):
        m = Module()
        prog = self._program
        steps = prog.steps
        height, width = Signal(16), Signal(16)
        engine_seen = Signal()
        with m.FSM() as fsm:
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += self.step.eq(0)
                    m.next = "LOAD"
            with m.State("LOAD"):
                with m.Switch(self.step):
                    for k, s in enumerate(steps):
                        with m.Case(k):
                            m.d.sync += self._latch(s, height, width)
                m.next = "LAUNCH"
            with m.State("LAUNCH"):
                m.d.comb += [self.engine_start.valid.eq(1),
                             self.engine_start.payload.layer.eq(self.step),
                             self.engine_start.payload.height.eq(height),
                             self.engine_start.payload.width.eq(width)]
                with m.If(self.engine_start.ready):
                    m.d.comb += [self.read.eq(~self.from_image), self.write.eq(~self.to_sum)]
                    m.d.sync += engine_seen.eq(0)
                    m.next = "RUN"
            with m.State("RUN"):
                with m.If(self.engine_done):
                    m.d.sync += engine_seen.eq(1)
                sink = Signal()
                m.d.comb += sink.eq((self.to_sum & self.summed) | (~self.to_sum & self.written))
                with m.If(engine_seen & sink):
                    with m.If(self.step == len(steps) - 1):
                        m.d.comb += self.done.eq(1)
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += self.step.eq(self.step + 1)
                        m.next = "LOAD"
        m.d.comb += self.busy.eq(~fsm.ongoing("IDLE"))
        return m

    def _latch(self, s, height, width):
        """Statements that load step ``s``'s descriptor."""
        beats = self._program.beats(s.out_channels)
        return [
            height.eq(s.height), width.eq(s.width),
            self.from_image.eq(s.source is None), self.to_sum.eq(s.dest is None),
            self.read_base.eq(s.source or 0), self.read_words.eq(s.in_words),
            self.write_base.eq(s.dest or 0),
            self.pool.eq(s.pool), self.pool_height.eq(s.height), self.pool_width.eq(s.width),
            self.pool_beats.eq(beats),
            self.pool_row_beats.eq(pooled_size(s.width) * beats if s.pool else 0),
        ]
