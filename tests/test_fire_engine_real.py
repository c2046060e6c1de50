"""Every Fire layer of the real model on real activations (golden run on chelsea), cropped.

Each layer runs alone in an engine of 16 lanes on a 3x5 window taken at an image corner, so
a whole crop is one pixel group; the crop's own edges get the zero padding, exactly as
``golden.fixed.fire`` applied to the same crop.
"""

import numpy as np
import pytest

from golden import calibrate, codec, fixed, preprocess
from golden.network import Fire
from hw.fire.cycle_model import fire_cycles
from hw.fire.engine import FireEngine
from hw.fire.program import EngineProgram

from testkit.engine_driver import run_layer

REAL = codec.SHARED_MODEL_PATH
pytestmark = pytest.mark.skipif(not REAL.exists(),
                                reason=f"real model not found at {REAL}: ../shared is absent")


@pytest.fixture(scope="module")
def real():
    model = codec.load(REAL)
    qmodel = fixed.quantize(model, calibrate.load_plan(model))
    acts = qmodel.run(preprocess.preprocess(preprocess.load_image("chelsea")))
    inputs, previous = {}, None
    for op in qmodel.network:
        if isinstance(op, Fire):
            inputs[op.name] = acts[previous]
        previous = op.name
    return qmodel, inputs


SHAPES = [("fire2", "top-left"), ("fire3", "bottom-right"), ("fire4", "top-right"),
          ("fire5", "bottom-left"), ("fire6", "top-left"), ("fire7", "bottom-right"),
          ("fire8", "top-right"), ("fire9", "bottom-left")]


#: fire2 and fire3 run by default; the larger layers (15-50 s each in the Amaranth simulator)
#: with -m slow, so that the default suite stays under 15 minutes (every layer also runs whole
#: in the cocotb suite).
CROPS = [pytest.param(*shape, marks=[pytest.mark.slow] if i >= 2 else [])
         for i, shape in enumerate(SHAPES)]


def crop(x_full, corner):
    _, height, width = x_full.shape
    rows = slice(0, 3) if corner.startswith("top") else slice(height - 3, height)
    cols = slice(0, 5) if corner.endswith("left") else slice(width - 5, width)
    return np.ascontiguousarray(x_full[:, rows, cols])


@pytest.mark.parametrize("layer,corner", CROPS)
def test_real_fire_layer_crop(real, layer, corner):
    qmodel, inputs = real
    x = crop(inputs[layer], corner)
    program = EngineProgram.from_model(qmodel, [layer])
    engine = FireEngine(program, lanes=16, channels_per_beat=8)
    name, sq, e1, e3 = next(f for f in qmodel.fires if f[0] == layer)
    expected = fixed.fire(x, sq, e1, e3)
    got, cycles, _ = run_layer(engine, 0, x, expected.shape[0])
    np.testing.assert_array_equal(got, expected)
    fire = program.fires[0]
    assert cycles == fire_cycles(fire, lanes=16, channels_per_beat=8, height=3, width=5).cycles


@pytest.mark.parametrize("layer,corner", CROPS)
def test_real_fire_layer_crop_dataflow(real, layer, corner):
    """The same crops on the dataflow datapath (16-pixel groups: squeeze PE array 16,
    expand units 8 + 8 multipliers; the real layers' channel split): bit-exact, cycles as
    hw.dataflow.cycle_model predicts."""
    from hw.dataflow.cycle_model import layer_cycles
    from hw.dataflow.engine import DataflowEngine
    from hw.dataflow.program import DataflowProgram

    qmodel, inputs = real
    x = crop(inputs[layer], corner)
    program = DataflowProgram.from_model(qmodel, [layer], passes=(1, 2, 2))
    engine = DataflowEngine(program, lanes=16, channels_per_beat=8)
    name, sq, e1, e3 = next(f for f in qmodel.fires if f[0] == layer)
    expected = fixed.fire(x, sq, e1, e3)
    got, cycles, _ = run_layer(engine, 0, x, expected.shape[0])
    np.testing.assert_array_equal(got, expected)
    assert cycles == layer_cycles(engine, program, 0, height=3, width=5).cycles
