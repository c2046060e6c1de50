"""The whole network as the accelerator runs it: engine layers, their sources and sinks.

A SqueezeNet from ``golden.network`` becomes a list of :class:`NetworkStep`, one engine run each:

- conv1 (K x K, stride S, no padding, 3 channels) is a *plain* layer on patches: its input is
  the image through the :class:`~hw.network.patch_streamer.PatchStreamer`;
- each Fire module is a Fire layer;
- the last convolution (1x1, padding p) is a plain layer on the unpadded map; its padded border
  is the requantised bias, added by the :class:`~hw.network.global_sum.GlobalSum` as offsets;
- a 3x3/2 max-pool is fused after the layer before it (only the pooled map is stored);
- the global average pool is the global sum after the last layer.

Between steps the maps live in the activation store, one circular buffer of ``N`` words of
``L`` bytes (:class:`~hw.network.activation_store.ActivationStore` says why ``N``, the largest
input or output map of any step, is enough): each step writes its output right after its input
(modulo ``N``), and the next step reads it from there. A map of ``H x W`` pixels and ``C``
channels takes ``H*W*ceil(C/L)`` words, raster order.
"""

from __future__ import annotations

from dataclasses import dataclass

from golden.network import Conv, Fire, GlobalAvgPool, MaxPool, spatial_sizes
from hw.blocks.params import check_int
from hw.arch import SHARED
from hw.fire.program import EngineProgram
from hw.network.global_sum import padded_border_offsets
from hw.network.max_pool import pooled_size
from hw.network.patch_runs import run_bytes, run_conv

__all__ = ["NetworkStep", "NetworkProgram"]

IMAGE_CHANNELS = 3


@dataclass(frozen=True)
class NetworkStep:
    """One engine run of the network.

    ``height``/``width``/``out_channels``: the engine's output map (before any pool);
    ``in_words``: words read from the store (0 for the image); ``out_words``: words written
    (after the pool; 0 for the global sum); ``source``/``dest``: the store address the input is
    read from / the output written to, or None for the image / the global sum.
    """
    name: str
    layer: int
    height: int
    width: int
    in_channels: int
    out_channels: int
    pool: bool
    source: int | None
    dest: int | None
    in_words: int
    out_words: int

    @property
    def out_height(self):
        return pooled_size(self.height) if self.pool else self.height

    @property
    def out_width(self):
        return pooled_size(self.width) if self.pool else self.width


class NetworkProgram:
    """Engine program, steps and store sizes of a whole quantised SqueezeNet.

    Parameters
    ----------
    qmodel : golden.fixed.QuantizedModel
    input_size : int
        Height = width of the image (227 for the real model).
    channels_per_beat : int
        L, bytes per activation-store word and per stream beat (at least 3: a pixel of the image
        is one beat).
    code_bits : int
    patch_runs : bool
        Stream conv1's patches a kernel row (run) per cycle
        (:class:`~hw.network.patch_runs.PatchRunStreamer`, L a multiple of the run's Q bytes)
        instead of a byte per cycle; conv1 then reads ``C*K*Q`` patch channels
        (:func:`~hw.network.patch_runs.run_conv`). Worth it above 64 lanes, where a byte per
        cycle no longer keeps the lanes busy; it takes more block RAM for the image rows.

    Members
    -------
    steps : tuple of NetworkStep
    layer_specs : tuple
        The engine layers, one per step: ``(name, h, w, squeeze, e1, e3)`` for a Fire module,
        ``(name, h, w, conv)`` for a plain layer (what :class:`EngineProgram` takes).
    engine_program : EngineProgram
        All of them; :meth:`engine_program_for` makes one of some.

    Raises
    ------
    ValueError
        If the network is not conv1 (unpadded), Fire modules, 3x3/2 pools, a last 1x1
        convolution and a global average pool, or ``input_size`` is too small for it.
    """

    def __init__(self, qmodel, *, input_size=227, channels_per_beat=8, code_bits=8,
                 patch_runs=False):
        check_int("Channels per beat", channels_per_beat, IMAGE_CHANNELS, 64)
        check_int("Input size", input_size, 1, 4096)
        self.qmodel = qmodel
        self.input_size = input_size
        self.channels_per_beat = channels_per_beat
        net = list(qmodel.network)
        if len(net) < 3 or not isinstance(net[0], Conv) or not isinstance(net[-1], GlobalAvgPool):
            raise ValueError("the network must start with a convolution and end with a global "
                             "average pool")
        first = net[0]
        if first.pad or first.in_channels != IMAGE_CHANNELS:
            raise ValueError(f"{first.name}: the first convolution must be unpadded over "
                             f"{IMAGE_CHANNELS} channels")
        if input_size < first.kernel:
            raise ValueError(f"a {input_size}x{input_size} image is smaller than "
                             f"{first.name}'s {first.kernel}x{first.kernel} kernel")
        self._check_pools(net, input_size)
        sizes = spatial_sizes(net, input_size)
        self.conv1 = qmodel.layers[first.name]
        self.patch_runs = bool(patch_runs)
        if patch_runs and channels_per_beat % run_bytes(first.kernel):
            raise ValueError(f"patches in runs need channels per beat a multiple of "
                             f"{run_bytes(first.kernel)} ({first.name}'s {first.kernel}-pixel "
                             f"rows), not {channels_per_beat}")
        self.last = None
        layers, steps = [], []
        size, channels = input_size, IMAGE_CHANNELS
        for index, op in enumerate(net[:-1]):
            if isinstance(op, MaxPool):
                if (op.kernel, op.stride) != (3, 2) or not steps or steps[-1].pool:
                    raise ValueError(f"{op.name}: only a 3x3/2 max-pool after a layer is "
                                     f"supported")
                steps[-1] = self._step(steps[-1], pool=True)
                size = sizes[op.name]
                continue
            if isinstance(op, Fire):
                sq, e1, e3 = (qmodel.layers[c.name] for c in op.convs)
                layers.append((op.name, size, size, sq, e1, e3))
                out = op.out_channels
                out_size = size
            elif isinstance(op, Conv) and (index == 0 or (op.kernel == 1 and op.stride == 1)):
                conv = qmodel.layers[op.name]
                out_size = sizes[op.name] if index == 0 else size
                if index == 0 and self.patch_runs:
                    conv = run_conv(conv)
                layers.append((op.name, out_size, out_size, conv))
                out = op.out_channels
                if index:
                    self.last = conv
            else:
                raise ValueError(f"{op.name}: the accelerator runs conv1, Fire modules, 3x3/2 "
                                 f"pools and a last 1x1 convolution, not {op!r}")
            k = len(steps)
            steps.append(NetworkStep(
                name=op.name, layer=k, height=out_size, width=out_size,
                in_channels=channels, out_channels=out, pool=False, source=None, dest=None,
                in_words=0 if k == 0 else size * size * self.beats(channels), out_words=0))
            size, channels = out_size, out
        if self.last is None or steps[-1].name != self.last.name:
            raise ValueError("the last layer before the global pool must be a 1x1 convolution")
        steps = [self._step(s) for s in steps]
        steps[-1] = NetworkStep(**{**steps[-1].__dict__, "out_words": 0})
        self.store_words = max(max(s.in_words, s.out_words) for s in steps)
        self.steps = self._place(steps)
        self.layer_specs = tuple(layers)
        self._programs = {}
        self.engine_program = EngineProgram(layers, code_bits=code_bits,
                                            weight_bits=qmodel.weight_bits)
        self.sum_offsets = padded_border_offsets(self.last, steps[-1].height, steps[-1].width)
        self.classes = steps[-1].out_channels

    @staticmethod
    def _check_pools(net, size):
        """A clear error for a pool whose input map is smaller than its 3x3 window."""
        for op in net:
            if isinstance(op, Conv):
                size = (size + 2 * op.pad - op.kernel) // op.stride + 1
            elif isinstance(op, MaxPool):
                if size < 3:
                    raise ValueError(f"{op.name}: a {size}x{size} map is too small to pool")
                size = pooled_size(size)

    def engine_program_for(self, names):
        """The :class:`EngineProgram` of just the steps named in ``names``, in network order
        (engine layer ``k`` is the ``k``-th of them); unknown names are ignored."""
        return self.program_for(SHARED, names)

    def program_for(self, arch, names=None):
        """The program of ``arch`` (:class:`hw.arch.Arch`) for the steps named in ``names``
        (default all), in network order; made once per architecture and names."""
        arch = arch.base
        key = (arch, None if names is None else frozenset(names))
        if arch == SHARED and names is None:
            return self.engine_program
        if key not in self._programs:
            specs = [spec for spec in self.layer_specs if names is None or spec[0] in key[1]]
            self._programs[key] = arch.program(specs, code_bits=self.engine_program.code_bits,
                                               weight_bits=self.engine_program.weight_bits)
        return self._programs[key]

    def input_shape(self, step):
        """``(height, width, channels)`` of ``step``'s input map: the image for the first step,
        else the previous step's output (after its pool)."""
        k = self.steps.index(step)
        if k == 0:
            return self.input_size, self.input_size, IMAGE_CHANNELS
        prev = self.steps[k - 1]
        return prev.out_height, prev.out_width, prev.out_channels

    def beats(self, channels):
        """Beats (store words) per pixel of ``channels`` channels."""
        return -(-channels // self.channels_per_beat)

    def _step(self, step, pool=None):
        """``step`` with ``pool`` set (if given) and ``out_words`` recomputed."""
        pool = step.pool if pool is None else pool
        fields = {**step.__dict__, "pool": pool}
        sized = NetworkStep(**fields)
        fields["out_words"] = (sized.out_height * sized.out_width *
                               self.beats(step.out_channels))
        return NetworkStep(**fields)

    def _place(self, steps):
        """Steps with their store addresses: each output right after its input, modulo N."""
        placed, source = [], None
        for k, step in enumerate(steps):
            last = k == len(steps) - 1
            dest = None if last else 0 if source is None else \
                (source + step.in_words) % self.store_words
            placed.append(NetworkStep(**{**step.__dict__, "source": source, "dest": dest}))
            source = dest
        return placed

    @property
    def store_bits(self):
        """Bits of the activation store."""
        return self.store_words * 8 * self.channels_per_beat

    @property
    def patch_kernel(self):
        return self.conv1.spec.kernel

    @property
    def patch_stride(self):
        return self.conv1.spec.stride
