"""Build targets as data: a board (or a bare device for synthesis only), its clock and the
default engine configuration sized to its multipliers.

``lanes`` is the number of multiply-accumulate lanes of the Fire engine, one hard multiplier
each (uint8 activation x int16 codebook entry fits DSP48E1, MULT18X18D and SB_MAC16); it is a
power of two within the DSP budget that leaves multipliers spare for address arithmetic and
requantisation (arty_a7 64 of 90), and fewer where block RAM, routing or the synthesis tools
are the limit (see the comments below).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from .devices import Device, get_device, lookup

__all__ = ["Board", "BOARDS", "get_board", "UnknownBoardError"]


class UnknownBoardError(KeyError, ValueError):
    """An unknown board name; both a ``KeyError`` and a ``ValueError`` so either may be caught."""

    def __str__(self):
        # KeyError's own __str__ shows the repr of the argument; show the message as written.
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class Board:
    """A build target.

    Members
    -------
    name : str
        Key used on the command line (``--board arty_a7``).
    description : str
    device : Device
    platform : str or None
        ``"module:Class"`` of the amaranth-boards platform; ``None`` for synthesis-only targets.
    clock_hz : float or None
        Frequency of the board's default clock; ``None`` for synthesis-only targets.
    engine : dict
        Default engine configuration: ``lanes`` and ``channels_per_beat`` (the weight width
        comes from the model's quantisation plan).
    bram_budget : float
        Share of the block-RAM sites the *default* layer choice may fill (an explicit layer
        list may use them all): below 1 where a full device routes too slowly.
    pll_hz : float or None
        The design's clock when a PLL makes it from ``clock_hz`` (ECP5 only), else None: the
        design runs from the board's clock.
    """

    name: str
    description: str
    device: Device
    platform: str | None
    clock_hz: float | None
    engine: dict = field(compare=False)
    bram_budget: float = 1.0
    pll_hz: float | None = None

    def __post_init__(self):
        lanes = self.engine.get("lanes")
        # the engine's rule (hw.blocks.params.check_lanes; boards/ imports nothing from hw/)
        if isinstance(lanes, bool) or not isinstance(lanes, int):
            raise TypeError(f"{self.name}: Lane count must be an integer, not {lanes!r}")
        if not 1 <= lanes <= 1024 or (lanes % 8 if lanes > 8 else lanes & (lanes - 1)):
            raise ValueError(f"{self.name}: Lane count must be 1, 2, 4 or a multiple of 8 up "
                             f"to 1024, not {lanes!r}")
        if lanes > self.device.dsps:
            raise ValueError(f"{self.name}: {lanes} lanes exceed the {self.device.dsps} "
                             f"{self.device.dsp_primitive} of {self.device.name}")

    @property
    def design_clock_hz(self):
        """The clock the design runs at: the PLL's, else the board's (None if unknown)."""
        return self.pll_hz or self.clock_hz

    @property
    def family(self):
        return self.device.family

    @property
    def synthesis_only(self):
        """True for targets without a board (no pins, no clock, no bitstream)."""
        return self.platform is None

    @property
    def has_open_pnr(self):
        """Whether a bitstream can be made here with open tools (a board and a P&R binary)."""
        return not self.synthesis_only and self.device.has_open_pnr

    def platform_class(self):
        """Import and return the amaranth-boards platform class.

        Raises
        ------
        ValueError
            For a synthesis-only target.
        """
        if self.platform is None:
            raise ValueError(f"{self.name} is a synthesis-only target without a platform")
        module, _, cls = self.platform.partition(":")
        return getattr(importlib.import_module(module), cls)


def _engine(lanes, arch="shared", **wide):
    # The shared-lane engine is every board's default: measured against the dataflow datapath
    # (hw.build --arch dataflow) with the same multipliers it holds more layers on the Arty
    # A7-35T (conv1..fire5 against conv1..fire3: the dataflow's three line-buffer copies and
    # output memories take block RAM) and clocks higher on the ULX3S (92.0 against 87.2 MHz,
    # 2 % fewer cycles on fire2..fire5); see the README's table.
    #
    # ``wide``: channels_per_beat (default 8), channels_per_cycle and patch_runs, for boards
    # with more than 64 lanes in the whole network (see the README, "the whole network above
    # 64 lanes").
    return {"lanes": lanes, "channels_per_beat": 8, "arch": arch, **wide}


#: The options that keep 128+ lanes busy on the whole network (README: "the whole network
#: above 64 lanes").
WIDE = {"channels_per_beat": 32, "channels_per_cycle": 8, "patch_runs": True}

BOARDS = {b.name: b for b in (
    Board("arty_a7", "Digilent Arty A7-35T", get_device("xc7a35t"),
          "amaranth_boards.arty_a7:ArtyA7_35Platform", 100e6, _engine(64)),
    # 128 of 240 multipliers, host-driven (conv1, fire2..fire6 on chip). The wide options
    # hold the same layers (131 of 135 sites against 122) and take fire2..fire9 from 0.539 to
    # 0.906 of the lanes busy (README).
    Board("arty_a7_100", "Digilent Arty A7-100T", get_device("xc7a100t"),
          "amaranth_boards.arty_a7:ArtyA7_100Platform", 100e6, _engine(128, **WIDE)),
    # 64 of 156 multipliers, the design clocked at 100 MHz by a PLL: fire2..fire4 in half the
    # block RAM (94 of 208 sites), 115.2 MHz, place-and-route 4 min 37 s with nextpnr's
    # electrostatic placer, router1 and the multipliers' own input and output registers
    # (2026-12-06, session 18; README, "64 lanes at 100 MHz": 5 of 6 seeds under 9 min, one
    # over 11, the line buffer's window the hot spot; with HeAP it took 9.5-12.3 minutes). 32
    # lanes (conv1, fire2..fire5) reach 104.1 MHz in 3 min 55 s, 16 lanes (fire2..fire6) 108.4
    # MHz. With 91% of the block RAM filled (fire2..fire8, 16 lanes) routing took 14 minutes
    # and reached 70 MHz, with 28% (fire2..fire5) 4 minutes and 94 MHz: the default stays
    # within half.
    Board("ulx3s_85f", "Radiona ULX3S with ECP5 LFE5U-85F, speed grade 6",
          get_device("lfe5u-85f"), "amaranth_boards.ulx3s:ULX3S_85F_Platform", 25e6,
          _engine(64), bram_budget=0.5, pll_hz=100e6),
    # 2 of 8 multipliers: block RAM, not multipliers, is the limit: fire2 alone with 4 lanes
    # needs 31 of the 30 4-Kib blocks, with 2 lanes 29.
    Board("icebreaker", "1BitSquared iCEBreaker (iCE40 UP5K)", get_device("ice40up5k"),
          "amaranth_boards.icebreaker:ICEBreakerPlatform", 12e6, _engine(2)),
    # 128 lanes: the whole v1.0 network on chip (weights, the activation store and the
    # engine's buffers). The engine's buffers double from 64 lanes (conv_final's 1,000 output
    # channels take 1,024 words a slot): with its line buffer in block RAM it needs 378 of the
    # 365 block-RAM sites, with the line buffer in LUT RAM (two 1,024-bit x 128-word halves,
    # a quarter of their 29 sites used) 349. 64 lanes took 319 sites (with the wide options;
    # 7.14 M cycles, 0.957 utilisation), synthesised in 11 min 15 s.
    Board("xc7a200t", "Artix-7 200T, synthesis only", get_device("xc7a200t"),
          None, None, _engine(128, line_buffer="distributed", **WIDE)),
    # 256 of 3,360 multipliers: with 1,024 lanes Yosys (YoWASP, a WebAssembly build with a
    # 4 GB address space) died after 602 s ("thrown Wasm exception" in SHARE). 256 lanes with
    # 8 channels per cycle in and out, 32-channel beats and conv1's patches in runs: the whole
    # network, 2.01 M cycles (0.849 utilisation, 49.7 frames/s at 100 MHz), 493 block-RAM
    # sites, synthesised in 9 min 6 s (2026-12-04, session 13; 9 min 42 s and 1.8 GB before
    # session 12's carry-chain cuts; 23 min 56 s and 3.6 GB before
    # session 10's cuts to the engine's logic).
    Board("xc7vx1140t", "Virtex-7 XC7VX1140T (largest Virtex-7), synthesis only",
          get_device("xc7vx1140t"), None, None, _engine(256, **WIDE)),
)}


def get_board(name):
    """Look up a target by name (case-insensitive; ``-`` and ``_`` are equivalent).

    Raises
    ------
    UnknownBoardError
        (a ``KeyError`` and a ``ValueError``) for an unknown name, listing the known ones.
    """
    if isinstance(name, Board):
        return name
    return lookup(BOARDS, name, "board", separator="_", error=UnknownBoardError)
