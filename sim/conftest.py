"""pytest glue for the cocotb suite: one item per (testbench, simulator), speed report at the end.

A test taking a ``simulator`` argument runs once per simulator chosen by ``SIM`` (see
``sim/README.md``): unset/``all`` = Verilator and Icarus (Icarus items skip, with the reason, when
``iverilog`` is missing), ``verilator`` or ``icarus`` = just that one (a missing simulator then
fails rather than skips).
"""

import time

import pytest

from sim import toolchain

_STARTED = time.perf_counter()


def pytest_generate_tests(metafunc):
    if "simulator" in metafunc.fixturenames:
        metafunc.parametrize("simulator", toolchain.simulator_params(), indirect=True)


@pytest.fixture
def simulator(request):
    return toolchain.require(request.param)


@pytest.fixture
def test_id(request):
    """Unique, filesystem-safe name of this pytest item (run dir, waveform file)."""
    return toolchain.safe_id(request.node.name)


def pytest_terminal_summary(terminalreporter, config):
    stats = terminalreporter.stats
    session = {
        "wall_seconds": round(time.perf_counter() - _STARTED, 1),
        "args": " ".join(config.invocation_params.args),
        "markexpr": config.option.markexpr,
        "SIM": ",".join(toolchain.selected_simulators()[0]),
        **{key: len(stats.get(key, [])) for key in ("passed", "failed", "skipped", "error")},
    }
    summary = toolchain.write_speed_report(session=session)
    if not summary:
        return
    terminalreporter.section("simulation speed (all runs stored in sim_build/sim_speed.json)")
    for sim, modules in sorted(summary.items()):
        for module, entry in sorted(modules.items()):
            rate = entry["cycles_per_second"]
            terminalreporter.write_line(
                f"{sim:9s} {module:22s} {entry['cycles']:>11,d} cycles in "
                f"{entry['seconds']:>7.1f} s ({entry['runs']} runs) = "
                + (f"{rate:>9,d} cycles/s" if rate else "n/a"))
