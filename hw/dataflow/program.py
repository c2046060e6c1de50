"""What the dataflow Fire datapath is loaded with: three units' entry streams, split per layer.

The dataflow datapath (:class:`~hw.dataflow.engine.DataflowEngine`) has three units, each with
its own weight store, entry decoder, lanes, accumulators and requantisers:

- the **squeeze PE array** (unit 0) runs a Fire layer's squeeze 1x1 into the line buffer;
- the **expand-1x1 unit** (unit 1) and the **expand-3x3 unit** (unit 2) run the expand
  convolutions from the line buffer into their own output memories.

How a layer's output channels are split between the units (:func:`split_layer`; cut points
``(a, b)``: the squeeze unit takes output channels ``0..a-1``, the expand-1x1 unit ``a..b-1``,
the expand-3x3 unit ``b..E-1``):

- **Fire layer.** The expand outputs are channels ``0..E-1`` (the ``E1`` 1x1 channels, then the
  ``E3`` 3x3 channels). ``balance="strict"`` is the split as specified: ``(0, E1)``, all 1x1 on
  the expand-1x1 unit, all 3x3 on the expand-3x3 unit. ``"expand"`` moves the cut between the
  two expand units to even out their entry counts: the expand-1x1 unit then also runs the
  first 3x3 channels, or the 3x3 unit the last 1x1 channels; the cost is that both expand
  units read the line buffer through the 3x3 tap rotation and padding logic. ``"all"`` (the
  default) also lets the squeeze PE array take the first expand channels after its squeeze,
  in layers where its squeeze is light: it then runs two jobs a group (squeeze group ``g``,
  expand group ``g - A - 1``) and needs its own line-buffer copy and output memory. A unit's
  work is weighed by its passes (its multipliers are the group's lanes divided by them).
- **Plain layer** (conv1 on patches, conv10): one 1x1 convolution; its output channels are cut
  into three ranges, one per unit, chosen to even out the work, and every unit reads the
  input buffer and writes its own output memory.

A sub-convolution is the original's entries for a range of output channels, re-encoded from
position 0 of the range (:func:`slice_conv`), so every unit decodes exactly as the shared
engine does; the decoded output channel plus a per-phase base (``dbase``) is the unit's local
output channel.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from golden.codec import check_code_bits, encode_positions, entry_positions
from hw.fire.program import EngineProgram, _check_weight_bits, fire_layers, hardware_entries

__all__ = ["UNITS", "BALANCE", "slice_conv", "channel_entry_counts", "split_layer", "UnitConv",
           "UnitLayer", "UnitProgram", "DataflowProgram"]

#: The three units, in their index order.
UNITS = ("squeeze", "expand1x1", "expand3x3")


def channel_entry_counts(conv):
    """Hardware entries (fillers included) that fall in each output channel of ``conv``."""
    spec = conv.spec
    per_channel = spec.in_channels * spec.kernel * spec.kernel
    codes, rel = hardware_entries(conv.codes, conv.rel, spec.out_channels, per_channel)
    channel = entry_positions(rel) // per_channel
    return np.bincount(channel, minlength=spec.out_channels).astype(np.int64)


def slice_conv(conv, lo, hi):
    """``(codes, rel, codebook, bias)`` of output channels ``lo..hi-1`` of ``conv``, the
    entries re-encoded from the range's first position (fillers where gaps need them)."""
    spec = conv.spec
    per_channel = spec.in_channels * spec.kernel * spec.kernel
    codes, rel = hardware_entries(conv.codes, conv.rel, spec.out_channels, per_channel)
    pos = entry_positions(rel)
    keep = (pos >= lo * per_channel) & (pos < hi * per_channel)
    sub_codes, sub_rel = encode_positions(pos[keep] - lo * per_channel, codes[keep])
    sub_codes, sub_rel = hardware_entries(sub_codes, sub_rel, hi - lo, per_channel)
    return sub_codes, sub_rel, np.asarray(conv.codebook), np.asarray(conv.bias)[lo:hi]


def _best_cut(left, right):
    """Index ``k`` (0..n) minimising ``max(left[k], right[k])`` (first on ties)."""
    return int(np.argmin(np.maximum(left, right)))


BALANCE = ("strict", "expand", "all")


def split_layer(convs, *, balance="all", passes=(1, 1, 1)):
    """Output-channel cut points ``(a, b)`` of a layer: the squeeze unit takes output channels
    ``0..a-1``, the expand-1x1 unit ``a..b-1``, the expand-3x3 unit ``b..E-1`` (a Fire
    layer's output channels: its E1 1x1 channels, then its E3 3x3 channels).

    ``balance``: ``"strict"`` (Fire: ``(0, E1)``, the split as specified), ``"expand"`` (Fire:
    ``a = 0``, ``b`` evens out the expand units), ``"all"`` (the squeeze unit also takes expand
    channels next to its squeeze). A unit's time per group is its entries times its
    ``passes``; the cuts minimise the largest (first on ties). Plain layers are always cut
    three ways."""
    if balance not in BALANCE:
        raise ValueError(f"balance must be one of {', '.join(BALANCE)}, not {balance!r}")
    ps, p1, p3 = passes
    if len(convs) == 3:
        e1 = convs[1].spec.out_channels
        if balance == "strict":
            return (0, e1)
        per = np.concatenate([channel_entry_counts(convs[1]), channel_entry_counts(convs[2])])
        head = int(channel_entry_counts(convs[0]).sum()) if balance == "all" else None
    else:
        per = channel_entry_counts(convs[0])
        head = 0
    cum = np.concatenate([[0], np.cumsum(per)])
    total = int(cum[-1])
    if head is None:
        return (0, _best_cut(cum * p1, (total - cum) * p3))
    best = None
    for a in range(per.size + 1):
        rest = total - cum[a]
        mid = cum[a:] - cum[a]                  # expand-1x1 unit's work for b = a..E
        b = a + _best_cut(mid * p1, (rest - mid) * p3)
        cost = max((head + cum[a]) * ps, (cum[b] - cum[a]) * p1, (total - cum[b]) * p3)
        if best is None or cost < best[0]:
            best = (cost, a, b)
    return best[1:]


@dataclass(frozen=True)
class UnitConv:
    """One sub-convolution a unit runs in a layer."""
    name: str
    phase: int          # 0 squeeze (x -> line buffer), 1 expand 1x1, 2 expand 3x3, 3 plain
    in_channels: int
    entry_base: int
    entry_count: int
    codebook_base: int
    bias_base: int
    shift: int
    dbase: int          # local destination channel of the sub-convolution's channel 0


@dataclass(frozen=True)
class UnitLayer:
    """What one unit does in one layer: its sub-convolutions (by slot: 0 squeeze, 1 the
    1x1 part, 2 the 3x3 or plain part; None where it has none) and its output channels."""
    name: str
    slots: tuple
    out_lo: int         # first global output channel it writes (layer outputs only)
    out_hi: int
    reads_x: bool
    writes_out: bool

    @property
    def dual(self):
        """The squeeze unit of a Fire layer also expands some channels (two jobs a group)."""
        return self.slots[0] is not None and self.slots[0].phase == 0 and \
            any(c is not None for c in self.slots[1:])

    @property
    def entry_count(self):
        return sum(c.entry_count for c in self.slots if c is not None)


@dataclass
class UnitProgram:
    """Memory images and per-layer work of one unit (duck-typed like
    :class:`~hw.fire.program.EngineProgram` for the weight store and the entry pipeline)."""
    name: str
    code_bits: int
    weight_bits: int
    parent: "DataflowProgram"
    layers: list = field(default_factory=list)
    entries: np.ndarray = None
    codebooks: np.ndarray = None
    biases: np.ndarray = None

    @property
    def entry_width(self):
        return self.code_bits + 4

    @property
    def fire_widths(self):
        """The map widths of the program's Fire layers (a unit's line buffer rotates for
        these with ``fixed_widths``)."""
        return self.parent.engine_program.fire_widths

    def max(self, attribute, default=0):
        return self.parent.max(attribute, default)

    @property
    def shifts(self):
        """The requantisation shifts of this unit's sub-convolutions, sorted (all of the
        parent's if it has none)."""
        own = {c.shift for layer in self.layers for c in layer.slots if c is not None}
        return tuple(sorted(own)) or self.parent.engine_program.shifts


class DataflowProgram:
    """The dataflow datapath's program: the layers (as :class:`EngineProgram` sees them) and the
    three units' sub-programs.

    Parameters
    ----------
    layers : list of tuples
        As for :class:`~hw.fire.program.EngineProgram`.
    code_bits, weight_bits : int
    balance : str
        ``"all"`` (default), ``"expand"`` or ``"strict"``: see :func:`split_layer`.
    passes : (int, int, int)
        Per unit, the passes it takes over a group's lanes (its multipliers are the group's P
        lanes divided by this); the splits weigh each unit's work by it.
    """

    def __init__(self, layers, *, code_bits=8, weight_bits=16, balance="all",
                 passes=(1, 1, 1)):
        passes = tuple(passes)
        if len(passes) != 3 or not all(isinstance(p, int) and not isinstance(p, bool) and
                                       p >= 1 and not p & (p - 1) for p in passes):
            raise ValueError(f"passes must be three powers of two, not {passes!r}")
        self.passes = passes
        self.engine_program = EngineProgram(layers, code_bits=code_bits, weight_bits=weight_bits)
        self.code_bits = check_code_bits(code_bits)
        self.weight_bits = _check_weight_bits(weight_bits)
        self.balance = balance
        self.layers = self.engine_program.layers
        self.units = [UnitProgram(name, self.code_bits, self.weight_bits, self)
                      for name in UNITS]
        images = [{"entries": [], "codebooks": [], "biases": []} for _ in UNITS]
        self.splits = []
        for (name, _h, _w, *convs), layer in zip(layers, self.layers):
            cuts = split_layer(convs, balance=balance, passes=passes)
            self.splits.append(cuts)
            add = [functools.partial(self._add, images=img) for img in images]
            if layer.is_fire:
                unit_layers = self._fire_units(name, convs, cuts, add)
            else:
                unit_layers = self._plain_units(name, convs[0], cuts, add)
            for unit, unit_layer in zip(self.units, unit_layers):
                unit.layers.append(unit_layer)
        for unit, img in zip(self.units, images):
            unit.entries = (np.concatenate(img["entries"]) if img["entries"]
                            else np.zeros(1, np.int64))
            unit.codebooks = (np.concatenate(img["codebooks"]) if img["codebooks"]
                              else np.zeros(1 << self.code_bits, np.int64))
            unit.biases = (np.concatenate(img["biases"]) if img["biases"]
                           else np.zeros(1, np.int64))

    def _add(self, conv, phase, lo, hi, dbase, images):
        codes, rel, codebook, bias = slice_conv(conv, lo, hi)
        spec = conv.spec
        in_channels = spec.in_channels * (spec.kernel ** 2 if phase == 3 else 1)
        sub = UnitConv(
            name=f"{spec.name}[{lo}:{hi}]", phase=phase, in_channels=in_channels,
            entry_base=sum(e.size for e in images["entries"]), entry_count=int(codes.size),
            codebook_base=len(images["codebooks"]) << self.code_bits,
            bias_base=sum(b.size for b in images["biases"]), shift=int(conv.shift),
            dbase=dbase)
        images["entries"].append(codes.astype(np.int64) |
                                 (rel.astype(np.int64) << self.code_bits))
        images["codebooks"].append(np.asarray(codebook, np.int64))
        images["biases"].append(np.asarray(bias, np.int64))
        return sub

    def _fire_units(self, name, convs, cuts, add):
        sq, e1c, e3c = convs
        e1, e = e1c.spec.out_channels, e1c.spec.out_channels + e3c.spec.out_channels
        bounds = (0, *cuts, e)
        result = []
        for unit in range(3):
            lo, hi = bounds[unit], bounds[unit + 1]
            one = (lo, min(hi, e1))           # its 1x1 channels
            three = (max(lo, e1) - e1, hi - e1)  # its 3x3 channels (of the 3x3 conv)
            slot0 = add[unit](sq, 0, 0, sq.spec.out_channels, 0) if unit == 0 else None
            slot1 = add[unit](e1c, 1, *one, 0) if one[1] > one[0] else None
            slot2 = (add[unit](e3c, 2, *three, max(0, one[1] - one[0]))
                     if three[1] > three[0] else None)
            result.append(UnitLayer(name, (slot0, slot1, slot2), lo, hi, reads_x=unit == 0,
                                    writes_out=hi > lo or unit > 0))
        return result

    def _plain_units(self, name, conv, cuts, add):
        e = conv.spec.out_channels
        bounds = (0, *cuts, e)
        result = []
        for unit in range(3):
            lo, hi = bounds[unit], bounds[unit + 1]
            slot = add[unit](conv, 3, lo, hi, 0) if hi > lo else None
            result.append(UnitLayer(name, (None, None, slot), lo, hi, reads_x=True,
                                    writes_out=True))
        return result

    @classmethod
    def from_model(cls, qmodel, layers=None, *, code_bits=8, input_size=227, balance="all",
                   passes=(1, 1, 1)):
        """The program of a golden ``QuantizedModel``'s Fire layers (all, or those named)."""
        return cls(fire_layers(qmodel, layers, input_size=input_size), code_bits=code_bits,
                   weight_bits=qmodel.weight_bits, balance=balance, passes=passes)

    def max(self, attribute, default=0):
        return self.engine_program.max(attribute, default)

    @property
    def fires(self):
        return self.engine_program.fires

    def out_capacity(self, unit):
        """Largest local output channel count of ``unit`` over the layers."""
        return max((u.out_hi - u.out_lo for u in self.units[unit].layers), default=0)
