"""One dimension of a 3-wide, stride-2 max-pool in Caffe's ceil mode, on a beat stream.

The input is a sequence of *lines* (pixels of a row, or rows of a map), each of ``words``
beats, pooled in sets of ``length`` lines (one row's pixels; one map's rows) that follow each
other until the run's ``last`` beat. Output line ``k`` of a set is the beat-wise maximum of its
lines ``2k``, ``2k+1`` and ``2k+2`` (those that exist: ceil mode keeps a last, partial window). One memory word per beat of
a line holds the running maximum of the output line being built:

- line ``2k`` (k >= 1) finishes output line ``k-1`` (its maximum with the stored one is sent)
  and starts output line ``k`` (it is stored);
- line 0 starts output line 0; an odd line is folded into the stored maximum, and if it is the
  last line (``length`` even) it also finishes the last output line.

So every output beat leaves on the input beat that completes it, in order, and the run's last
input beat always emits the run's last output beat. Two stages in a row (pixels, then rows)
make the 3x3/2 pool (:class:`~hw.network.max_pool.MaxPool`).
"""

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.blocks.layouts import beat_layout
from hw.blocks.params import check_int

__all__ = ["PoolStage"]


class PoolStage(wiring.Component):
    """Max of lines 2k, 2k+1, 2k+2 for every output line k, beat by beat.

    Throughput one input beat every three cycles (a read-modify-write of its line word, the
    block RAM's output registered before the byte maxima, the write registered after them: on
    ECP5 each was the critical path). Latency: an emitted beat is on ``o`` three cycles after
    its input beat was taken, and stays there until taken; ``i`` waits while ``o`` holds a beat
    that is not being taken.

    Parameters
    ----------
    channels_per_beat : int
        L, channels per beat.
    max_words : int
        Largest ``words`` of any run (the depth of the line memory).

    Members
    -------
    i : In(stream.Signature(beat_layout(L)))
        ``first`` marks a run's first beat (it restarts the counters); ``last`` is passed on.
    o : Out(stream.Signature(beat_layout(L)))
        ``first`` on the run's first output beat, ``last`` on its last.
    length : In(16)
        Lines per run, at least 3; steady during a run.
    words : In(range(max_words + 1))
        Beats per line, at least 1; steady during a run.
    """

    def __init__(self, *, channels_per_beat, max_words):
        check_int("Channels per beat", channels_per_beat, 1, 64)
        check_int("Word count", max_words, 1, 1 << 20)
        self._beat, self._max_words = channels_per_beat, max_words
        super().__init__({
            "i": In(stream.Signature(beat_layout(channels_per_beat))),
            "o": Out(stream.Signature(beat_layout(channels_per_beat))),
            "length": In(16),
            "words": In(range(max_words + 1)),
        })

    def elaborate(self, platform):
        m = Module()
        L = self._beat
        m.submodules.line = line = Memory(shape=unsigned(8 * L), depth=self._max_words, init=[])
        rd = line.read_port()
        wr = line.write_port()

        word = Signal(range(self._max_words))
        pos = Signal(16)                       # input line of the beat taken
        sent_any = Signal()                    # an output beat of this run has left
        held = Signal.like(self.i.payload)
        stored = Signal(8 * L)                 # the line word, registered
        finishes, last_word, last_line = Signal(), Signal(), Signal()   # set in READ
        m.d.comb += rd.addr.eq(word)
        # The write is registered and lands in the next cycle (the next beat's TAKE), so the
        # RAM's read data, the byte maxima and the write data are not one round trip (the
        # 32-lane ULX3S build's critical path: a row RAM placed 50 columns from this logic).
        # The next beat reads another word, except with one-word lines: those take their word
        # from the write register ``w_data`` instead, and the RAM's read is not used.
        w_addr, w_data, w_en = Signal.like(word), Signal(8 * L), Signal()
        one_word = Signal()
        m.d.comb += [wr.addr.eq(w_addr), wr.data.eq(w_data), wr.en.eq(w_en)]
        m.d.sync += w_en.eq(0)
        # The output register: emptied when taken, loaded in MAX (never both in one cycle:
        # TAKE only accepts a beat when the register is empty or being emptied).
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.FSM():
            with m.State("TAKE"):
                m.d.comb += self.i.ready.eq(~self.o.valid | self.o.ready)
                # The read address does not wait for the handshake (a beat not taken is read
                # again next cycle): through the ready chain of the stages after this one it
                # was the ECP5 critical path.
                with m.If(self.i.payload.first):
                    m.d.comb += rd.addr.eq(0)
                with m.If(self.i.valid & self.i.ready):
                    m.d.sync += held.eq(self.i.payload)
                    with m.If(self.i.payload.first):
                        m.d.sync += [word.eq(0), pos.eq(0), sent_any.eq(0)]
                    m.next = "READ"
            with m.State("READ"):
                # The line and word tests are registered here (pos and word are steady until
                # MAX): in MAX they were the ECP5 critical path, adds and compares into the
                # enables of the output register.
                even = ~pos[0]
                m.d.sync += [stored.eq(rd.data), one_word.eq(self.words == 1),
                             finishes.eq(Mux(even, pos != 0, pos + 1 == self.length)),
                             last_word.eq(word + 1 == self.words),
                             last_line.eq(pos + 1 == self.length)]
                m.next = "MAX"
            with m.State("MAX"):
                new = held.data.as_value()
                kept = Mux(one_word, w_data, stored)
                best = Cat(*(Mux(kept[8 * j:8 * j + 8] > new[8 * j:8 * j + 8],
                                 kept[8 * j:8 * j + 8], new[8 * j:8 * j + 8])
                             for j in range(L)))
                m.d.sync += [w_addr.eq(word), w_en.eq(1), w_data.eq(Mux(pos[0], best, new))]
                with m.If(finishes):
                    m.d.sync += [self.o.valid.eq(1), self.o.payload.data.eq(best),
                                 self.o.payload.first.eq(~sent_any),
                                 self.o.payload.last.eq(held.last), sent_any.eq(1)]
                m.d.sync += [word.eq(Mux(last_word, 0, word + 1)),
                             pos.eq(Mux(last_word, Mux(last_line, 0, pos + 1), pos))]
                m.next = "TAKE"
        return m
