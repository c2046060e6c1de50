"""PNG plots of the bench and design-space figures (matplotlib, no display needed).

Every function takes the plain rows the tools also write as JSON, draws one figure on the Agg
canvas (``matplotlib.figure.Figure``, so no pyplot state and no GUI backend) and writes it
whole: to a temporary file beside the target, then renamed into place.

- :func:`plot_bench_cycles`: ``hw.bench --plots``, per layer where the cycles go;
- :func:`plot_design_space`: ``hw.explore --plots``, compressed model size against frames/s,
  each board's block RAM as a vertical line;
- :func:`plot_layer_cycles`: ``hw.explore --plots``, cycles per layer stacked per design point;
- :func:`plot_resources`: ``hw.build``'s ``resources.png``, each resource used (or predicted)
  against what the device has.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

__all__ = ["plot_bench_cycles", "plot_design_space", "plot_layer_cycles", "plot_resources", "MIB"]

#: Bytes in the MB of the plots and tables (the SqueezeNet paper's MB are MiB).
MIB = 2 ** 20

# Where the cycles go, as hw.bench counts them: (row key, legend, colour).
_CYCLE_PARTS = (
    ("issue_cycles", "issuing entries (all lanes busy)", "#4c72b0"),
    ("wait_input_cycles", "waiting for the input loader", "#dd8452"),
    ("wait_output_cycles", "waiting for the output drainer", "#c44e52"),
    ("wait_units_cycles", "waiting for another unit (dataflow)", "#55a868"),
    ("overhead_cycles", "control, pipeline drains", "#8c8c8c"),
)


def _figure(width, height):
    from matplotlib.figure import Figure
    return Figure(figsize=(width, height), dpi=110, layout="constrained")


def _save(fig, path):
    """Write ``fig`` as a PNG at ``path`` whole (temporary file, then rename) and return the
    path; with ``path`` None, return the PNG's bytes instead."""
    if path is None:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        return buffer.getvalue()
    path = Path(path)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp makes the file private; give it the mode open() would have.
        mask = os.umask(0)
        os.umask(mask)
        os.fchmod(fd, 0o666 & ~mask)
        with os.fdopen(fd, "wb") as f:
            fig.savefig(f, format="png")
        os.replace(temp, path)
    finally:
        Path(temp).unlink(missing_ok=True)
    return path


def plot_bench_cycles(rows, summary, path):
    """Stacked bars: each layer's cycles split into issue / wait input / wait output /
    overhead (``hw.bench``'s rows and summary); returns ``path`` (or the PNG bytes when
    ``path`` is None)."""
    fig = _figure(max(6.0, 0.7 * len(rows) + 2.5), 4.8)
    ax = fig.add_subplot()
    names = [r["layer"] for r in rows]
    bottom = [0.0] * len(rows)
    for key, label, colour in _CYCLE_PARTS:
        if not any(key in r for r in rows):
            continue
        values = [r.get(key, 0) / 1e6 for r in rows]
        ax.bar(names, values, bottom=bottom, label=label, color=colour)
        bottom = [b + v for b, v in zip(bottom, values)]
    for x, r in enumerate(rows):
        ax.annotate(f"{r['utilisation']:.2f}", (x, r["cycles"] / 1e6), ha="center",
                    va="bottom", fontsize=8, xytext=(0, 2), textcoords="offset points")
    ax.set_ylabel("cycles (millions)")
    s = summary
    what = "whole network" if s.get("whole_network") else "Fire layers, each alone"
    ax.set_title(f"Where the cycles go, {what}: {s['cycles']:,} cycles, "
                 f"{s['frames_per_second']:.1f} frames/s at {s['clock_mhz']:g} MHz\n"
                 f"{s.get('datapath', str(s['lanes']) + ' lanes')} (number above a bar: "
                 f"utilisation on non-zero weights)",
                 fontsize=9)
    ax.tick_params(axis="x", labelrotation=45)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def plot_resources(report, path):
    """Horizontal bars: LUT, FF, block-RAM sites and DSPs used by synthesis (or, without it,
    predicted by the planner) as a share of the device, from a build report; returns ``path``
    (or the PNG bytes when ``path`` is None)."""
    fig = _figure(6.4, 2.8)
    ax = fig.add_subplot()
    names, shares, labels = [], [], []
    for name, row in report["resources"].items():
        value = row["used"] if row["used"] is not None else row["predicted"]
        if value is None or not row["available"]:
            continue
        kind = "used" if row["used"] is not None else "predicted"
        names.append(name.upper())
        shares.append(100.0 * value / row["available"])
        labels.append(f"{value:,} / {row['available']:,} ({kind})")
    bars = ax.barh(names, shares, color=["#c44e52" if s > 100 else "#4c72b0" for s in shares])
    for bar, label in zip(bars, labels):
        ax.annotate(label, (bar.get_width(), bar.get_y() + bar.get_height() / 2), va="center",
                    fontsize=8, xytext=(3, 0), textcoords="offset points")
    ax.axvline(100, color="black", linewidth=0.8)
    ax.set_xlim(0, max([110.0] + [s * 1.35 for s in shares]))
    ax.set_xlabel(f"% of the {report['device']}")
    ax.invert_yaxis()
    ax.set_title(f"{report['board']}: resources against the device ({report['mode']['mode']})",
                 fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


def plot_design_space(points, boards, path, *, title=""):
    """Compressed model size (MiB, log scale) against frames/s, one labelled marker per design
    point, each board's block-RAM capacity a labelled vertical line; returns ``path``.

    ``points``: dicts with ``label``, ``sweep``, ``compressed_bytes``, ``frames_per_second``
    and ``holds`` (board names); ``boards``: dicts with ``name``, ``device``, ``bram_bits``.
    The marker's shape is its sweep, its colour the smallest board that holds the whole
    network (hollow: none does). Boards far smaller than every point are named in the x label
    instead of widening the axis.
    """
    from matplotlib.lines import Line2D

    fig = _figure(9.0, 6.5)
    ax = fig.add_subplot()
    shapes = {"SR": "o", "pct3x3": "^"}
    by_size = sorted(boards, key=lambda b: b["bram_bits"])
    palette = dict(zip([b["name"] for b in by_size], _colormap(len(by_size))))
    smallest_point = min(p["compressed_bytes"] for p in points) / MIB
    labelled = {}
    for p in points:
        # A network in two sweeps is one marker with both labels.
        labelled.setdefault((p["compressed_bytes"], p["frames_per_second"]), []).append(p)
    holders = []
    for same in labelled.values():
        p = same[0]
        x, y = p["compressed_bytes"] / MIB, p["frames_per_second"]
        holder = next((b["name"] for b in by_size if b["name"] in p["holds"]), None)
        if holder and holder not in holders:
            holders.append(holder)
        colour = palette[holder] if holder else "#555555"
        ax.scatter([x], [y], marker=shapes.get(p["sweep"], "s"), s=55, edgecolors=colour,
                   facecolors=colour if holder else "none", zorder=3)
        # SR labels to the left, the 3x3 sweep's to the right: the two sweeps interleave.
        left = p["sweep"] == "SR"
        ax.annotate(" = ".join(q["label"] for q in same), (x, y), fontsize=7,
                    xytext=(-6 if left else 6, 0), textcoords="offset points",
                    ha="right" if left else "left", va="center")
    xs = [p["compressed_bytes"] / MIB for p in points]
    off_scale = []
    for b in by_size:
        capacity = b["bram_bits"] / 8 / MIB
        if capacity < smallest_point / 8:
            off_scale.append(f"{b['name']} {capacity:.3f} MiB")
            continue
        xs.append(capacity)
        ax.axvline(capacity, color="#777777", linestyle="--", linewidth=0.8, zorder=1)
        ax.annotate(f"{b['name']} ({b['device']}) {capacity:.2f} MiB", (capacity, 0.02),
                    xycoords=("data", "axes fraction"), rotation=90, fontsize=7, ha="right",
                    va="bottom", color="#555555")
    ax.set_xscale("log")
    ax.set_xlim(min(xs) / 1.4, max(xs) * 1.4)
    ax.set_ylim(0, 1.15 * max(p["frames_per_second"] for p in points))
    note = f" (left of the axis: {', '.join(off_scale)})" if off_scale else ""
    ax.set_xlabel("compressed model (.net file), MiB; dashed: each board's block RAM" + note,
                  fontsize=8)
    ax.set_ylabel("frames/s at 100 MHz (whole network)")
    ax.set_title(title or "Design space", fontsize=9)
    handles = [Line2D([], [], marker=shapes.get(sweep, "s"), linestyle="", color="#555555",
                      markerfacecolor="none", label=f"{sweep} sweep")
               for sweep in dict.fromkeys(p["sweep"] for p in points)]
    handles += [Line2D([], [], marker="o", linestyle="", color=palette[name],
                       label=f"held whole by {name} (smallest)") for name in holders]
    if any(not p["holds"] for p in points):
        handles.append(Line2D([], [], marker="o", linestyle="", color="#555555",
                              markerfacecolor="none", label="held whole by no board"))
    ax.legend(handles=handles, fontsize=7, loc="upper right")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_layer_cycles(points, path, *, title=""):
    """Stacked bars, one per design point: its cycles per layer (``points``: dicts with
    ``label`` and ``layers``, rows with ``layer`` and ``cycles``); returns ``path``."""
    fig = _figure(max(7.0, 0.6 * len(points) + 3.0), 5.0)
    ax = fig.add_subplot()
    names = []
    for p in points:
        names.extend(r["layer"] for r in p["layers"] if r["layer"] not in names)
    labels = [p["label"] for p in points]
    bottom = [0.0] * len(points)
    cmap = _colormap(len(names))
    for k, name in enumerate(names):
        values = [sum(r["cycles"] for r in p["layers"] if r["layer"] == name) / 1e6
                  for p in points]
        ax.bar(labels, values, bottom=bottom, label=name, color=cmap[k])
        bottom = [b + v for b, v in zip(bottom, values)]
    ax.set_ylabel("cycles per image (millions)")
    ax.set_title(title or "Cycles per layer", fontsize=9)
    ax.tick_params(axis="x", labelrotation=45)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def _colormap(count):
    from matplotlib import colormaps
    cmap = colormaps["tab20" if count > 10 else "tab10"]
    return [cmap(k % cmap.N) for k in range(count)]
