"""What the Fire engine is loaded with: descriptors and memory images built from the golden model.

The engine runs one layer at a time: a Fire layer is three convolutions (squeeze 1x1, expand
1x1, expand 3x3); a *plain* layer is one 1x1 convolution (conv10, or conv1 run on the patches
of :class:`~hw.network.patch_streamer.PatchStreamer` as a 1x1 convolution over ``K*K*3``
channels). Each convolution is stored as a stream of sparse entries ``(code, rel)`` exactly as in
the Deep Compression file. The only change made here is :func:`hardware_entries`: it adds filler
entries (code 0, so weight 0) so that every output channel owns at least one entry. The entry
decoder then only ever moves to the *next* output channel, never skips one, and each channel's
accumulator is started and finished by an entry. On the real model this adds no entry at all
(every channel already has one); it only matters for tiny random test layers.

Memory images (all little integers, laid out by :class:`EngineProgram`):

- ``entries``: one word per entry, ``code | rel << code_bits``, all convolutions back to back;
- ``codebooks``: ``2**code_bits`` signed weights per convolution;
- ``biases``: one signed 32-bit bias per output channel per convolution.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from golden.codec import check_code_bits, encode_positions, entry_positions
from golden.fixed import WEIGHT_BITS_RANGE

__all__ = ["hardware_entries", "fire_layers", "ConvProgram", "FireProgram", "PlainProgram",
           "EngineProgram"]


def hardware_entries(codes, rel, out_channels, per_channel):
    """Sparse entries with fillers added so that every output channel has at least one entry.

    Parameters
    ----------
    codes, rel : array of uint8
        The stored entries of one convolution (codebook index, relative index 0..15).
    out_channels : int
    per_channel : int
        Weights per output channel (``in_channels * k * k``).

    Returns
    -------
    (codes, rel) : tuple of uint8 arrays
        Same weights at the same positions; a filler (code 0) is inserted at the first position
        of any channel no entry falls in, and wherever the gap to it would exceed 16.
    """
    codes = np.asarray(codes, dtype=np.uint8)
    rel = np.asarray(rel, dtype=np.uint8)
    positions = entry_positions(rel)
    channel = positions // per_channel
    covered = np.zeros(out_channels, dtype=bool)
    covered[channel[channel < out_channels]] = True
    if covered.all():
        return codes.copy(), rel.copy()
    if positions.size and positions[-1] >= out_channels * per_channel:
        raise ValueError(f"entries run past the layer's {out_channels * per_channel} weights")
    # Rare path (tiny layers): rebuild the position list with a filler at each empty channel's
    # start, then re-encode gaps with fillers every 16 positions as the file format does.
    extra = np.arange(out_channels, dtype=np.int64)[~covered] * per_channel
    all_pos = np.concatenate([positions, extra])
    all_codes = np.concatenate([codes, np.zeros(extra.size, dtype=np.uint8)])
    order = np.argsort(all_pos, kind="stable")
    return encode_positions(all_pos[order], all_codes[order])


def _check_weight_bits(weight_bits):
    low, high = WEIGHT_BITS_RANGE
    message = f"Weight width must be an integer from {low} to {high}, not {weight_bits!r}"
    if isinstance(weight_bits, bool) or not isinstance(weight_bits, (int, np.integer)):
        raise TypeError(message)
    if not low <= weight_bits <= high:
        raise ValueError(message)
    return int(weight_bits)


@dataclass(frozen=True)
class ConvProgram:
    """One convolution as the engine sees it: where its entries, codebook and biases live."""
    name: str
    out_channels: int
    in_channels: int
    kernel: int
    shift: int
    entry_base: int
    entry_count: int
    codebook_base: int
    bias_base: int


@dataclass(frozen=True)
class FireProgram:
    """A Fire layer the engine can run: its shape and its three convolutions."""
    name: str
    height: int
    width: int
    in_channels: int
    squeeze: ConvProgram
    expand1x1: ConvProgram
    expand3x3: ConvProgram

    @property
    def squeeze_channels(self):
        return self.squeeze.out_channels

    @property
    def out_channels(self):
        return self.expand1x1.out_channels + self.expand3x3.out_channels

    @property
    def convs(self):
        return (self.squeeze, self.expand1x1, self.expand3x3)

    is_fire = True


@dataclass(frozen=True)
class PlainProgram:
    """A plain layer the engine can run: one convolution read as 1x1 over ``in_channels``.

    conv1 (K x K over 3 channels) runs on patches, so its ``in_channels`` is ``K*K*3`` and its
    entries are used unchanged (patch channel ``c*K*K + ky*K + kx`` is weight ``(o, c, ky, kx)``).
    """
    name: str
    height: int
    width: int
    in_channels: int
    conv: ConvProgram

    @property
    def squeeze_channels(self):
        return 0

    @property
    def out_channels(self):
        return self.conv.out_channels

    @property
    def convs(self):
        return (self.conv,)

    is_fire = False


def fire_layers(qmodel, layers=None, *, input_size=227):
    """``(name, height, width, squeeze, expand1x1, expand3x3)`` of a golden
    ``QuantizedModel``'s Fire layers (all, or those named), as the programs take them.

    Raises
    ------
    ValueError
        If a requested layer is not a Fire module of the model.
    """
    from golden.network import spatial_sizes
    sizes = spatial_sizes(qmodel.network, input_size)
    fires = {name: (name, sizes[name], sizes[name], sq, e1, e3)
             for name, sq, e1, e3 in qmodel.fires}
    if layers is None:
        layers = list(fires)
    unknown = [name for name in layers if name not in fires]
    if unknown:
        raise ValueError(f"no Fire layer {', '.join(unknown)} in the model; it has "
                         f"{', '.join(fires)}")
    return [fires[name] for name in layers]


class EngineProgram:
    """Descriptor table and memory images for a set of layers.

    Parameters
    ----------
    layers : list of tuples
        ``(name, height, width, squeeze, expand1x1, expand3x3)`` for a Fire layer,
        ``(name, height, width, conv)`` for a plain layer (``height x width`` output pixels).
        The convolutions are golden ``QConv`` objects (anything with ``spec``, ``codebook``
        (quantised, integer), ``codes``, ``rel``, ``bias`` (integer) and ``shift``).
    code_bits : int
        Width of a codebook index, ``golden.codec.MIN_CODE_BITS..MAX_CODE_BITS`` (4..8).
    weight_bits : int
        Width of a quantised codebook entry, ``golden.fixed.WEIGHT_BITS_RANGE`` (8..18).

    Raises
    ------
    TypeError
        If ``code_bits`` or ``weight_bits`` is not an integer.
    ValueError
        If the convolutions do not form Fire modules or a plain layer, or a value does not fit
        its field.
    """

    def __init__(self, layers, *, code_bits=8, weight_bits=16):
        code_bits = check_code_bits(code_bits)
        weight_bits = _check_weight_bits(weight_bits)
        if not layers:
            raise ValueError("An engine program needs at least one layer")
        self.code_bits = code_bits
        self.weight_bits = weight_bits
        self.layer_specs = tuple(layers)
        images = {"entries": [], "codebooks": [], "biases": []}
        add = functools.partial(self._add, images=images)
        self.layers = []
        for layer in layers:
            name, height, width, *convs = layer
            if len(convs) == 3:
                sq, e1, e3 = convs
                if not (sq.spec.kernel == 1 and e1.spec.kernel == 1 and e3.spec.kernel == 3):
                    raise ValueError(f"{name}: expected squeeze 1x1, expand 1x1, expand 3x3 "
                                     f"kernels")
                if e1.spec.in_channels != sq.spec.out_channels or \
                        e3.spec.in_channels != sq.spec.out_channels:
                    raise ValueError(f"{name}: expand layers must read the squeeze output")
                self.layers.append(FireProgram(name, int(height), int(width),
                                               sq.spec.in_channels,
                                               *(add(conv) for conv in convs)))
            elif len(convs) == 1:
                spec = convs[0].spec
                in_channels = spec.in_channels * spec.kernel * spec.kernel
                self.layers.append(PlainProgram(name, int(height), int(width), in_channels,
                                                add(convs[0])))
            else:
                raise ValueError(f"{name}: a layer is a Fire module (3 convolutions) or one "
                                 f"convolution, not {len(convs)}")
        self.entries = np.concatenate(images["entries"])
        self.codebooks = np.concatenate(images["codebooks"])
        self.biases = np.concatenate(images["biases"])

    def _add(self, conv, images):
        """Append one convolution's entries, codebook and biases to the lists of ``images``;
        return its ConvProgram (its bases are where the lists end so far)."""
        code_bits, weight_bits = self.code_bits, self.weight_bits
        spec = conv.spec
        per_channel = spec.in_channels * spec.kernel * spec.kernel
        codes, rel = hardware_entries(conv.codes, conv.rel, spec.out_channels, per_channel)
        if int(codes.max(initial=0)) >= 1 << code_bits:
            raise ValueError(f"{spec.name}: a code does not fit {code_bits} bits")
        if not 0 <= conv.shift <= 31:
            raise ValueError(f"{spec.name}: shift must be 0..31, not {conv.shift}")
        codebook = np.asarray(conv.codebook, dtype=np.int64)
        lo, hi = -(1 << (weight_bits - 1)), (1 << (weight_bits - 1)) - 1
        if codebook.size != 1 << code_bits or codebook.min() < lo or codebook.max() > hi:
            raise ValueError(f"{spec.name}: codebook must have {1 << code_bits} entries "
                             f"within {weight_bits}-bit signed range")
        bias = np.asarray(conv.bias, dtype=np.int64)
        if bias.min() < -(1 << 31) or bias.max() >= 1 << 31:
            raise ValueError(f"{spec.name}: biases must fit 32-bit signed")
        program = ConvProgram(
            name=spec.name, out_channels=spec.out_channels, in_channels=spec.in_channels,
            kernel=spec.kernel, shift=int(conv.shift),
            entry_base=sum(e.size for e in images["entries"]), entry_count=int(codes.size),
            codebook_base=len(images["codebooks"]) << code_bits,
            bias_base=sum(b.size for b in images["biases"]))
        images["entries"].append(codes.astype(np.int64) | (rel.astype(np.int64) << code_bits))
        images["codebooks"].append(codebook)
        images["biases"].append(bias)
        return program

    @classmethod
    def from_model(cls, qmodel, layers=None, *, code_bits=8, input_size=227):
        """The program of a golden ``QuantizedModel``'s Fire layers (all, or those named).

        Raises
        ------
        ValueError
            If a requested layer is not a Fire module of the model.
        """
        return cls(fire_layers(qmodel, layers, input_size=input_size), code_bits=code_bits,
                   weight_bits=qmodel.weight_bits)

    @property
    def entry_width(self):
        return self.code_bits + 4

    @property
    def shifts(self):
        """The requantisation shifts the layers use, sorted (the requantisers are built for
        these only)."""
        return tuple(sorted({conv.shift for layer in self.layers for conv in layer.convs}))

    @property
    def fires(self):
        """The Fire layers (:class:`FireProgram`), in program order."""
        return [layer for layer in self.layers if layer.is_fire]

    @property
    def fire_widths(self):
        """The Fire layers' map widths, sorted (what ``fixed_widths`` rotates for)."""
        return sorted({layer.width for layer in self.fires})

    def max(self, attribute, default=0):
        """Largest ``attribute`` over all layers."""
        return max((getattr(layer, attribute) for layer in self.layers), default=default)
