"""A memory's ``ram_style`` ("distributed"): LUT RAM in the plan and in Yosys's mapping."""

import dataclasses

import pytest

from hw.flow.bram_calibration import MemoryUnderTest
from hw.flow.memories import design_memories
from hw.flow.planner import MemorySpec, predict
from hw.flow.synth import synthesize

from tests.test_planner import DEVICE, needs_yosys


def test_distributed_style():
    """A RAM that asks for LUT RAM gets it whatever block RAM would cost (the 128-lane line
    buffer's half: 29 RAMB18 otherwise), on xc7 and ecp5; the attribute reaches the spec."""
    half = MemorySpec("half", 1024, 128, write_port=True)
    assert predict(half, "xc7a200t").cells == {"RAMB18E1": 29}
    for device in ("xc7a200t", "lfe5u-85f"):
        lut = predict(dataclasses.replace(half, style="distributed"), device)
        assert (lut.kind, lut.cells, lut.sites) == ("distributed", {}, 0.0)
    with pytest.raises(ValueError, match="Memory style must be one of .*, not 'block'"):
        MemorySpec("m", 8, 16, write_port=True, style="block")
    (spec,) = design_memories(MemoryUnderTest(72, 128, write_port=True, style="distributed"))
    assert spec.style == "distributed"
    (spec,) = design_memories(MemoryUnderTest(72, 128, write_port=True))
    assert spec.style is None


@needs_yosys
@pytest.mark.toolchain
@pytest.mark.parametrize("family", ["xc7", "ecp5"])
def test_distributed_style_matches_yosys(family, tmp_path):
    # 72 x 128 is block RAM by cost on both; with ram_style "distributed" no block RAM.
    spec = MemorySpec("m", 72, 128, write_port=True)
    assert predict(spec, DEVICE[family]).cells
    res = synthesize(MemoryUnderTest(72, 128, write_port=True, style="distributed"), family,
                     workdir=tmp_path, quiet=True)
    place = predict(dataclasses.replace(spec, style="distributed"), DEVICE[family])
    assert res.bram_cells == place.cells == {}, res.cells
    assert res.resources["lutram"] > 0, res.cells
