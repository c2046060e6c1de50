"""Line buffer of squeezed pixels: every lane's 3x3 neighbour in one read, zero padded.

The engine squeezes groups of P consecutive raster pixels; the expand 3x3 of a group needs
squeezed pixels up to a row plus one pixel before and after it. This buffer holds the last
``groups`` (D, a power of two) groups, one word of P bytes (one channel of every pixel of a
group) per (group, channel).

A tap at pixel offset ``off`` (``(dy)*W + dx``) seen from group g lands, for lane k, on pixel
``g*P + k + off``: with ``off = m*P + r`` (0 <= r < P) that is lane ``k + r`` of group ``g + m``
when ``k + r < P``, else lane ``k + r - P`` of group ``g + m + 1``. The two groups have
different parity, so the buffer is two memories split by group parity: each is read once, and a
rotation of the two words by ``r`` lanes gives every lane its neighbour. Lanes whose neighbour
lies outside the image are zeroed by a mask (the zero padding of 1 of the expand 3x3).

With ``rotations`` the rotation is built for only those (a map of width W
needs ``(dy*W + dx) mod P`` for dy, dx in -1..1, so a network of three map widths uses at most
21 of the P: dy = 0 gives the same three for every width). They are grouped into runs of
:data:`FINE` consecutive values: a *coarse* stage picks the run's window of P + FINE - 1 bytes
(an N-way multiplexer per bit, N the number of runs, 8 for SqueezeNet), registered when the
latency allows, and a *fine* stage shifts it by 0..FINE-1 bytes. At 64 lanes on the ECP5 this
is 6.3k LUT4 where the general 2P-byte rotation (the default) is about 18k. A width outside the
set would read wrong neighbours without an error, so the engine uses it only with
``fixed_widths`` (the network accelerator's choice), where its sequencer rejects a Fire run at
any width but its layer's own; otherwise a run may be any crop of its layer, and the rotation is
the general one.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from hw.blocks.signals import zero_extend

__all__ = ["FINE", "LineBuffer", "RAMS", "tap_rotations"]

#: What the line buffer's halves may be built from (``LineBuffer(ram=...)``).
RAMS = ("block", "distributed")

#: Consecutive rotations served by one coarse window (dx in -1..1 gives runs of 3).
FINE = 3


def tap_rotations(widths, lanes):
    """The lane rotations ``(dy*W + dx) mod P`` of the 3x3 taps of maps ``widths`` wide."""
    return sorted({(dy * w + dx) % lanes for w in widths for dy in (-1, 0, 1)
                   for dx in (-1, 0, 1)})


def _runs(rotations):
    """``[(base, (fine offsets...)), ...]``: the rotations in runs no longer than FINE."""
    runs = []
    for r in sorted(set(rotations)):
        if runs and r - runs[-1][0] < FINE:
            runs[-1][1].append(r - runs[-1][0])
        else:
            runs.append((r, [0]))
    return [(base, tuple(fine)) for base, fine in runs]


class LineBuffer(wiring.Component):
    """Squeezed pixels of the last ``groups`` pixel groups, read as shifted 3x3 taps.

    Latency ``read_latency`` (a request in cycle n gives ``r_data`` in cycle n +
    ``read_latency``, registered); one read and one write per cycle. Reads and writes never
    touch the same group at once in the engine's schedule, so no collision logic is needed.

    Parameters
    ----------
    lanes : int
        P, any count (the engines use 1, 2, 4 or a multiple of 8).
    groups : int
        D, a power of two of at least 2.
    channels : int
        Words per group (a power of two at least the squeeze channel count).
    read_latency : int
        At least 2 (the RAM read and the rotation, each registered); more adds registers
        after the RAM so that its output feeds only a register (from 3 on, the last of them
        is the coarse rotation stage).
    write_blocks : int
        Blocks of lanes written separately (``w_en`` has a bit per block).
    rotations : iterable of int, optional
        The values ``r_rot`` may take (:func:`tap_rotations` of the maps it will run); others
        give undefined data. Default (None): any rotation, a 2P-byte shifter.
    late_read : bool
        Meet ``read_latency`` by delaying the request (a few dozen bits) instead of the words
        read (2 x 8P bits a stage; at 64 lanes and latency 6 that was 3,000 flip-flops). The
        RAM is then read up to ``read_latency - 3`` cycles after the request: the user must
        not write the group read in that time (the shared engine writes the line buffer only
        in its squeeze phase, long after the last read of an expand).
    ram : str
        ``"block"`` (default): Yosys picks the mapping (block RAM from 65 words on xc7).
        ``"distributed"``: the halves ask for LUT RAM (``ram_style``). At 128 lanes a half is
        1,024 bits x 128 words, 14.5 block-RAM sites on xc7 for 131 Kib (a quarter used); in
        LUT RAM about 3k LUTs. Behaviour and latency are the same.

    Members
    -------
    w_en : In(write_blocks)
        Bit b: write lanes ``b*P/write_blocks ..`` of the word (one bit: the whole word).
    w_group : In(range(groups))
    w_chan : In(range(channels))
    w_data : In(unsigned(8 * lanes))
        Channel ``w_chan`` of the P pixels of group ``w_group`` (lane k in bits 8k..8k+7).
    r_group, r_rot : In(range(groups)), In(range(lanes))
        ``(g + m) mod D`` and ``r`` of the tap (see the module docstring).
    r_chan : In(range(channels))
    r_mask : In(unsigned(lanes))
        Lanes whose neighbour is inside the image.
    r_data : Out(unsigned(8 * lanes))
    """

    def __init__(self, *, lanes, groups, channels, read_latency=2, write_blocks=1,
                 rotations=None, late_read=False, ram="block"):
        for name, value in (("Lane count", lanes), ("Group count", groups),
                            ("Channel count", channels), ("Read latency", read_latency)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{name} must be an integer, not {value!r}")
        if lanes < 1:
            raise ValueError(f"Lane count must be at least 1, not {lanes!r}")
        for name, value in (("Group count", groups), ("Channel count", channels)):
            if value < 1 or value & (value - 1):
                raise ValueError(f"{name} must be a power of two, not {value!r}")
        if groups < 2:
            raise ValueError(f"Group count must be at least 2, not {groups!r}")
        if read_latency < 2:
            raise ValueError(f"Read latency must be at least 2, not {read_latency!r}")
        if write_blocks < 1 or lanes % write_blocks:
            raise ValueError(f"Write blocks must divide the lane count, not {write_blocks!r}")
        if rotations is not None:
            rotations = list(rotations)
            if not rotations or any(not isinstance(r, int) or not 0 <= r < lanes
                                    for r in rotations):
                raise ValueError(f"Rotations must be integers from 0 to {lanes - 1}, "
                                 f"not {rotations!r}")
        if ram not in RAMS:
            raise ValueError(f"Line-buffer RAM must be one of {', '.join(RAMS)}, not {ram!r}")
        self._attrs = {} if ram == "block" else {"ram_style": ram}
        self._runs = None if rotations is None else _runs(rotations)
        self._lanes, self._groups, self._channels = lanes, groups, channels
        self._blocks = write_blocks
        self.read_latency = read_latency
        self._late = bool(late_read)
        super().__init__({
            "w_en": In(write_blocks),
            "w_group": In(range(groups)),
            "w_chan": In(range(channels)),
            "w_data": In(unsigned(8 * lanes)),
            "r_group": In(range(groups)),
            "r_rot": In(range(lanes)),
            "r_chan": In(range(channels)),
            "r_mask": In(unsigned(lanes)),
            "r_data": Out(unsigned(8 * lanes)),
        })

    def elaborate(self, platform):
        m = Module()
        P, D = self._lanes, self._groups
        chan_bits = ceil_log2(self._channels)
        req = {"group": self.r_group, "rot": self.r_rot, "chan": self.r_chan,
               "mask": self.r_mask}
        # The data path's own stages: the RAM read, a register after it (the ECP5 flow moves
        # it into the RAM), the coarse stage (given rotations) and the output register. With
        # given rotations and the latency to spare, a second register after the RAM: the
        # first then feeds only it and is placed by the RAM (the ULX3S default's critical
        # path, 97.8 MHz, was such a RAM in its 36-bit mode, 5.6 ns clock-to-out before the
        # flow gave those RAMs their output register, into the register that fed the coarse
        # stage's windows).
        latency = self.read_latency
        if self._late:
            shortest = min(latency, 3 if self._runs is None else 5)
            for n in range(latency - shortest):
                req = self._register(m, req, f"req{n}")
            latency = shortest
        hi_group = Signal(range(D))
        m.d.comb += hi_group.eq(req["group"] + 1)
        # Each half is one memory per block of lanes written together (plain memories, no
        # write-enable granularity).
        blocks = self._blocks
        width = 8 * P // blocks
        data = []
        for parity in range(2):
            own = Mux(req["group"][0] == parity, req["group"], hi_group)
            words = []
            for b in range(blocks):
                mem = Memory(shape=unsigned(width), depth=D // 2 * self._channels, init=[],
                             attrs=self._attrs)
                m.submodules[f"half{parity}" + (f"_{b}" if blocks > 1 else "")] = mem
                rd, wr = mem.read_port(), mem.write_port()
                m.d.comb += [
                    rd.addr.eq(Cat(zero_extend(req["chan"], chan_bits), own[1:])),
                    wr.addr.eq(Cat(zero_extend(self.w_chan, chan_bits), self.w_group[1:])),
                    wr.data.eq(self.w_data[b * width:(b + 1) * width]),
                    wr.en.eq(self.w_en[b] & (self.w_group[0] == parity)),
                ]
                words.append(rd.data)
            data.append(Cat(*words))

        if self._runs is None:
            return self._general_rotation(m, data, req, latency)
        # Registers after the RAM, and the request's run, fine shift and mask, until the
        # coarse stage (registered from a latency of 3 on) and the fine stage.
        lo_odd, mask = req["group"][0], req["mask"]
        run = Signal(range(max(2, len(self._runs))), name="run")
        fine = Signal(range(FINE), name="fine")
        with m.Switch(req["rot"]):
            for i, (base, offsets) in enumerate(self._runs):
                for f in offsets:
                    with m.Case(base + f):
                        m.d.comb += [run.eq(i), fine.eq(f)]
        coarse_registered = latency >= 3
        data, ctl = self._delays(m, data, {"lo_odd": lo_odd, "run": run, "fine": fine,
                                           "mask": mask},
                                 latency - 1 - coarse_registered)
        lo_odd, run, fine, mask = ctl.values()
        window = Cat(Mux(lo_odd, data[1], data[0]), Mux(lo_odd, data[0], data[1]),
                     Const(0, 8 * FINE))
        span = 8 * (P + FINE - 1)
        coarse = Signal(span, name="coarse")
        with m.Switch(run):
            for i, (base, _) in enumerate(self._runs):
                with m.Case(i):
                    m.d.comb += coarse.eq(window[8 * base:8 * base + span])
        if coarse_registered:
            coarse_r = Signal(span, name="coarse_r")
            m.d.sync += coarse_r.eq(coarse)
            coarse = coarse_r
            fine, mask = self._register(m, {"fine": fine, "mask": mask}, "coarse").values()
        rotated = Signal(8 * P)
        with m.Switch(fine):
            for f in range(FINE):
                with m.Case(f):
                    m.d.comb += rotated.eq(coarse[8 * f:8 * f + 8 * P])
        return self._masked_output(m, rotated, mask)

    def _general_rotation(self, m, data, req, latency):
        """Any rotation: registers after the RAM, then a 2P-byte shift (``bit_select``)."""
        P = self._lanes
        data, ctl = self._delays(m, data, {"lo_odd": req["group"][0], "rot": req["rot"],
                                           "mask": req["mask"]}, latency - 1)
        lo_odd, rot, mask = ctl.values()
        lo_data = Mux(lo_odd, data[1], data[0])
        hi_data = Mux(lo_odd, data[0], data[1])
        rotated = Signal(8 * P)
        m.d.comb += rotated.eq(Cat(lo_data, hi_data).bit_select(Cat(Const(0, 3), rot), 8 * P))
        return self._masked_output(m, rotated, mask)

    def _delays(self, m, data, ctl, stages):
        """``stages`` register stages of the two halves' words (the RAM's own output
        register is the first) and of the request's values (dict ``ctl``)."""
        for n in range(stages):
            if n:
                delayed = [Signal(8 * self._lanes, name=f"half{p}_d{n}") for p in range(2)]
                m.d.sync += [d.eq(s) for d, s in zip(delayed, data)]
                data = delayed
            ctl = self._register(m, ctl, f"d{n}")
        return data, ctl

    def _masked_output(self, m, rotated, mask):
        """``r_data``: the rotated lanes, zero where ``mask`` is clear, registered."""
        P = self._lanes
        m.d.sync += self.r_data.eq(Cat(*(Mux(mask[k], rotated[8 * k:8 * k + 8], 0)
                                         for k in range(P))))
        return m

    @staticmethod
    def _register(m, signals, suffix):
        """A register of each value of the dict ``signals``, named ``{key}_{suffix}``."""
        out = {n: Signal(len(s), name=f"{n}_{suffix}") for n, s in signals.items()}
        m.d.sync += [out[n].eq(s) for n, s in signals.items()]
        return out
