"""The dataflow datapath in ``hw.bench``, and the shared-versus-dataflow comparison.

``python -m hw.bench --arch dataflow [--lanes 64]`` picks the dataflow datapath with at most
``--lanes`` multipliers and the fewest cycles (:func:`hw.arch.choose_dataflow`: group size and
each unit's multipliers) and prints its per-layer table; ``--arch both [--multipliers
16,64,128,240]`` benches the shared engine (the lane count within each budget with the fewest
cycles: 1, 2, 4 or a multiple of 8) and the chosen dataflow datapath at each budget and prints
both side by side.

Per layer and per unit of the dataflow datapath, from :mod:`hw.dataflow.cycle_model`: busy
(issuing entries), waiting for the input loader, waiting for another unit (squeezed pixels not
yet written, or line-buffer space still being read), waiting for the output drainer, and the
rest (WAIT/SETUP/FLUSH states, and idle after the unit's last group).
"""

from __future__ import annotations

from hw.arch import SHARED, choose_dataflow
from hw.bench import _summary, bench, bench_network, layer_work
from hw.fire.cycle_model import run_cycles
from hw.network.cycle_model import network_cycles

__all__ = ["dataflow_rows", "bench_any", "bench_dataflow", "bench_both", "format_dataflow_table",
           "format_comparison"]


def _dataflow_row(eprog, layer, model, arch, lanes):
    """Figures of one dataflow run of ``layer`` (``model``: a DataflowCycles)."""
    mults = arch.multipliers(lanes)
    work = layer_work(eprog, layer)
    pixels = layer.height * layer.width
    c = model.cycles
    unit_lanes = [lanes // p for p in arch.passes]
    units = []
    totals = dict.fromkeys(("issue", "input", "units", "output", "overhead"), 0.0)
    for name, n, u in zip(("squeeze", "expand1x1", "expand3x3"), unit_lanes, model.units):
        entry = {"unit": name, "multipliers": n, "issue": u.issue,
                 "wait_input": u.wait["input"],
                 "wait_units": u.wait["squeezed"] + u.wait["line_space"],
                 "wait_output": u.wait["output"], "overhead": u.overhead}
        units.append(entry)
        for key, value in (("issue", u.issue), ("input", entry["wait_input"]),
                           ("units", entry["wait_units"]), ("output", entry["wait_output"]),
                           ("overhead", u.overhead)):
            totals[key] += value * n / mults
    return {
        "layer": layer.name, "height": layer.height, "width": layer.width, "cycles": c,
        "multipliers": mults, **work,
        "nonzero_macs": pixels * work["nonzero_weights"],
        "dense_macs": pixels * work["dense_weights"],
        "utilisation": pixels * work["nonzero_weights"] / (mults * c),
        "dense_macs_per_mult_cycle": pixels * work["dense_weights"] / (mults * c),
        # multiplier-weighted over the units, for the plots
        "issue_cycles": totals["issue"], "wait_input_cycles": totals["input"],
        "wait_units_cycles": totals["units"], "wait_output_cycles": totals["output"],
        "overhead_cycles": totals["overhead"], "units": units,
    }


def dataflow_rows(netprog, arch, lanes, *, channels_per_beat=8, fire_program=None):
    """Rows and total cycles of the dataflow datapath: the whole network of ``netprog`` or
    (``fire_program``, an EngineProgram of Fire layers) each Fire layer alone."""
    if fire_program is not None:
        dprog = arch.program(fire_program.layer_specs, code_bits=fire_program.code_bits,
                             weight_bits=fire_program.weight_bits)
        runs = [arch.layer_cycles(dprog, k, lanes=lanes, channels_per_beat=channels_per_beat)
                for k in range(len(dprog.layers))]
        rows = [_dataflow_row(fire_program, layer, run, arch, lanes)
                for layer, run in zip(fire_program.layers, runs)]
        return rows, sum(r["cycles"] for r in rows)
    model = network_cycles(netprog, lanes=lanes, arch=arch)
    eprog = netprog.engine_program
    rows = []
    for step, (_, start, run) in zip(netprog.steps, model.steps):
        row = _dataflow_row(eprog, eprog.layers[step.layer], run, arch, lanes)
        row["start_cycle"] = start
        row["then"] = "global sum" if step.dest is None else "pool" if step.pool else ""
        rows.append(row)
    return rows, model.cycles


def bench_dataflow(netprog, budget, *, channels_per_beat=8, clock_mhz=100.0, balance="all",
                   fire_program=None):
    """The dataflow datapath of at most ``budget`` multipliers with the fewest cycles on the
    whole network of ``netprog`` (or each Fire layer of ``fire_program`` alone):
    ``(rows, summary)``."""
    whole = fire_program is None
    L = netprog.channels_per_beat if whole else channels_per_beat

    def evaluate(arch, lanes):
        if whole:
            return network_cycles(netprog, lanes=lanes, arch=arch).cycles
        return dataflow_rows(None, arch, lanes, channels_per_beat=L,
                             fire_program=fire_program)[1]

    _, lanes, arch = choose_dataflow(budget, evaluate, balance=balance)
    rows, cycles = dataflow_rows(netprog, arch, lanes, channels_per_beat=L,
                                 fire_program=fire_program)
    summary = _summary(rows, cycles, lanes=arch.multipliers(lanes), channels_per_beat=L,
                       clock_mhz=clock_mhz)
    summary.update({"arch": "dataflow", "group_pixels": lanes, "passes": list(arch.passes),
                    "balance": balance, "multipliers": arch.multipliers(lanes),
                    "budget": budget, "datapath": arch.describe(lanes),
                    "whole_network": whole})
    if whole:
        summary["activation_store_bits"] = netprog.store_bits
    return rows, summary


def bench_any(netprog, lanes, arch, *, clock_mhz=100.0):
    """``(rows, summary)`` of the whole network on ``arch`` with group size ``lanes``."""
    if arch.name == "shared":
        return bench_network(netprog, lanes=lanes, clock_mhz=clock_mhz)
    rows, cycles = dataflow_rows(netprog, arch, lanes)
    summary = _summary(rows, cycles, lanes=arch.multipliers(lanes),
                       channels_per_beat=netprog.channels_per_beat, clock_mhz=clock_mhz)
    summary.update({"arch": "dataflow", "datapath": arch.describe(lanes), "whole_network": True,
                    "activation_store_bits": netprog.store_bits})
    return rows, summary


def shared_candidates(budget):
    """The shared engine's lane counts within ``budget`` multipliers: 1, 2, 4 and the
    multiples of 8."""
    return [p for p in (1, 2, 4, *range(8, budget + 1, 8)) if p <= budget]


def shared_lanes(budget, evaluate):
    """The shared engine's lanes within ``budget`` multipliers with the fewest cycles
    ``evaluate(lanes)`` (fewer lanes on ties): with one channel per cycle in and out the
    loader and drainer limit it past about 64 lanes, so the most lanes are not the fastest."""
    return min(shared_candidates(budget), key=lambda p: (evaluate(p), p))


def bench_both(netprog, budgets, *, channels_per_beat=8, clock_mhz=100.0, balance="all",
               fire_program=None):
    """Both architectures at every budget: a list of ``(rows, summary)``."""
    results = []
    for budget in budgets:
        if fire_program is None:
            lanes = shared_lanes(budget, lambda p: network_cycles(netprog, lanes=p).cycles)
            rows, summary = bench_network(netprog, lanes=lanes, clock_mhz=clock_mhz)
        else:
            lanes = shared_lanes(budget, lambda p: sum(
                run_cycles(f, lanes=p, channels_per_beat=channels_per_beat).cycles
                for f in fire_program.fires))
            rows, summary = bench(fire_program, lanes=lanes, channels_per_beat=channels_per_beat,
                                  clock_mhz=clock_mhz)
        summary.update({"arch": "shared", "multipliers": lanes, "budget": budget,
                        "datapath": SHARED.describe(lanes)})
        results.append((rows, summary))
        results.append(bench_dataflow(netprog, budget, channels_per_beat=channels_per_beat,
                                      clock_mhz=clock_mhz, balance=balance,
                                      fire_program=fire_program))
    return results


def format_dataflow_table(rows, summary):
    head = (f"{'layer':<10} {'HxW':>7} {'cycles':>10} {'mults':>5} {'util':>6} "
            f"{'busy sq/e1/e3':>16} {'in':>5} {'units':>6} {'out':>5} {'ovh':>5}")
    lines = [head, "-" * len(head)]
    for r in rows:
        c = r["cycles"]
        busy = "/".join(f"{u['issue'] / c:.0%}" for u in r["units"])
        lines.append(
            f"{r['layer']:<10} {r['height']:>3}x{r['width']:<3} {c:>10,} {r['multipliers']:>5} "
            f"{r['utilisation']:>6.3f} {busy:>16} {r['wait_input_cycles'] / c:>5.1%} "
            f"{r['wait_units_cycles'] / c:>6.1%} {r['wait_output_cycles'] / c:>5.1%} "
            f"{r['overhead_cycles'] / c:>5.1%}")
    s = summary
    lines.append("-" * len(head))
    lines.append(f"{'all':<10} {'':>7} {s['cycles']:>10,} {s['multipliers']:>5} "
                 f"{s['utilisation']:>6.3f}")
    what = "Whole network" if s["whole_network"] else "Fire layers, each alone"
    lines.append(f"{what}: {s['ms_per_image']:.2f} ms per image at {s['clock_mhz']:g} MHz "
                 f"({s['frames_per_second']:.1f} frames/s); {s['datapath']} (chosen for at most "
                 f"{s['budget']} multipliers), layers split '{s['balance']}'.")
    lines.append("busy = each unit's share of cycles issuing entries; in / units / out = "
                 "waiting for the input loader / another unit / the output drainer, ovh = "
                 "control states and idle after a unit's last group (both weighted by the "
                 "units' multipliers).")
    return "\n".join(lines)


def format_comparison(results):
    """The side-by-side table of :func:`bench_both`'s results."""
    head = (f"{'budget':>6} {'arch':<9} {'mults':>5} {'cycles':>11} {'util':>6} "
            f"{'frames/s':>9}  datapath")
    lines = [head, "-" * (len(head) + 40)]
    for _, s in results:
        lines.append(f"{s['budget']:>6} {s['arch']:<9} {s['multipliers']:>5} "
                     f"{s['cycles']:>11,} {s['utilisation']:>6.3f} "
                     f"{s['frames_per_second']:>9.1f}  {s['datapath']}")
    lines.append("")
    names = [r["layer"] for r in results[0][0]]
    cols = [f"{s['arch'][:2]}@{s['budget']}" for _, s in results]
    lines.append("utilisation on non-zero weights per layer (sh = shared, da = dataflow):")
    lines.append(f"{'layer':<10} " + " ".join(f"{c:>8}" for c in cols))
    for k, name in enumerate(names):
        lines.append(f"{name:<10} " + " ".join(f"{rows[k]['utilisation']:>8.3f}"
                                               for rows, _ in results))
    return "\n".join(lines)
