"""Host-driven whole network: the board runs the layers it holds, the host the rest (no Amaranth).

On a board whose block RAM cannot hold the whole network, the build makes a
:class:`~hw.network.step_engine.StepEngine` behind the UART link: each layer it holds (a
*step*: conv1 on patches, a Fire module or the last 1x1 convolution, with its max-pool fused
and, for the last, the global sum) is one link layer, tagged with the step's position in the
network. :func:`classify_on_board` walks the network's steps: a step the board holds is sent
over the link (retried after a recovery if the link flags an error or a check value differs),
any other step is run here with the golden fixed-point model, so the sums are exact either way.

The steps are those of :class:`hw.network.program.NetworkProgram`, derived here from the model
alone: each convolution or Fire module starts a step; a max-pool and the global average pool
join the step before them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from golden.fixed import conv, fire, global_sum, maxpool3x3s2
from golden.network import Conv, Fire, GlobalAvgPool, MaxPool, spatial_sizes
from hw.board.driver import LinkError
from hw.board.protocol import NO_TAG, LayerShape

__all__ = ["Step", "StepRun", "network_steps", "run_step_on_host", "classify_on_board"]


@dataclass(frozen=True)
class Step:
    """One step of the network and the bytes a board's link layer moves for it."""
    index: int
    name: str
    ops: tuple
    shape: LayerShape

    @property
    def last(self):
        return isinstance(self.ops[-1], GlobalAvgPool)


@dataclass(frozen=True)
class StepRun:
    """Where a step ran, how long it took and how many attempts the board needed."""
    name: str
    where: str          # "board" or "host"
    seconds: float
    attempts: int = 1


def network_steps(qmodel, input_size):
    """The :class:`Step` list of ``qmodel``'s network for ``input_size`` x ``input_size`` images.

    Each step's ``shape`` is what a board's link reports for it (tag = index): input map,
    output map after the fused pool, and for the last step the sums as ``4 * classes`` bytes.
    """
    net = list(qmodel.network)
    sizes = spatial_sizes(net, input_size)
    groups = []
    for op in net:
        if isinstance(op, (MaxPool, GlobalAvgPool)) and groups:
            groups[-1].append(op)
        else:
            groups.append([op])
    steps, size, channels = [], input_size, 3
    for index, ops in enumerate(groups):
        main = ops[0]
        if not isinstance(main, (Conv, Fire)):
            raise ValueError(f"{main.name}: a network step starts with a convolution or a Fire "
                             f"module, not {main!r}")
        out_channels = main.out_channels
        if isinstance(ops[-1], GlobalAvgPool):
            shape = LayerShape(channels, 4 * out_channels, size, size, 1, 1, index)
        else:
            out = sizes[ops[-1].name]
            shape = LayerShape(channels, out_channels, size, size, out, out, index)
            size = out
        steps.append(Step(index, main.name, tuple(ops), shape))
        channels = out_channels
    return steps


def run_step_on_host(qmodel, step, x):
    """Golden fixed-point output of ``step`` for input ``x`` (uint8 (C, H, W)): uint8 (C, H, W),
    or the int64 sums for the last step."""
    for op in step.ops:
        if isinstance(op, Conv):
            x = conv(x, qmodel.layers[op.name])
        elif isinstance(op, Fire):
            x = fire(x, *(qmodel.layers[c.name] for c in op.convs))
        elif isinstance(op, MaxPool):
            x = maxpool3x3s2(x)
        else:
            x = global_sum(x)
    return x


def _board_layers(info, steps):
    """{step index: link layer index}; LinkError if the board's layers are not this network's."""
    board = {}
    for layer, shape in enumerate(info.shapes):
        if shape.tag == NO_TAG:
            raise LinkError(f"the board's layer {layer} names no network step: the board runs "
                            f"single layers (python -m hw.host run); build it with "
                            f"python -m hw.build for host-driven classification")
        if shape.tag >= len(steps):
            raise LinkError(f"the board's layer {layer} has tag {shape.tag}, not a step of this "
                            f"network ({len(steps)} steps): was it built for another model?")
        step = steps[shape.tag]
        if shape != step.shape:
            raise LinkError(f"the board's layer {layer} ({step.name}) moves {tuple(shape)}, this "
                            f"network needs {tuple(step.shape)}: build the board for the same "
                            f"model and --channels-per-beat, or pass the model it was built for")
        board[shape.tag] = layer
    return board


def classify_on_board(link, qmodel, bgr, *, retries=3, progress=None):
    """Global sums of image ``bgr`` (uint8 (3, H, W)) with the board's layers run on the board.

    Parameters
    ----------
    link : hw.board.driver.EngineLink
    qmodel : golden.fixed.QuantizedModel
        The model the board was built for.
    retries : int
        Extra attempts per board layer after a failed or corrupted run.
    progress : callable or None
        Called with a line of text at every step and retry.

    Returns
    -------
    (numpy.ndarray, list of StepRun)
        int64 sums per class, and where each step ran.
    """
    say = progress or (lambda text: None)
    steps = network_steps(qmodel, bgr.shape[1])
    board = _board_layers(link.info or link.ping(), steps)
    x, runs = np.asarray(bgr), []
    for step in steps:
        began = time.monotonic()
        if step.index in board:
            say(f"{step.name}: on the board (link layer {board[step.index]})")
            y, attempts = link.run_layer_retrying(
                board[step.index], np.transpose(x, (1, 2, 0)), retries=retries,
                on_retry=lambda n, exc, name=step.name: say(f"{name}: attempt {n} failed "
                                                            f"({exc}); retrying"))
            if step.last:
                x = np.frombuffer(y.tobytes(), dtype="<i4").astype(np.int64)
            else:
                x = np.ascontiguousarray(np.transpose(y, (2, 0, 1)))
            runs.append(StepRun(step.name, "board", time.monotonic() - began, attempts))
        else:
            say(f"{step.name}: on the host (golden fixed-point; not on the board)")
            x = run_step_on_host(qmodel, step, x)
            runs.append(StepRun(step.name, "host", time.monotonic() - began))
    return x, runs
