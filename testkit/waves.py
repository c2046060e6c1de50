"""The project's one waveform switch: ``WAVES=1`` writes one waveform file per test.

cocotb runs (``sim/``) write ``sim_build/waves/<test id>.vcd|.fst``; Amaranth-simulator tests
(``tests/``) write ``build/waves/<test id>.vcd`` through :func:`waves`.
"""

import contextlib
import os
import re
from pathlib import Path

__all__ = ["waves_enabled", "waves"]

WAVES_DIR = Path("build") / "waves"


def waves_enabled():
    """True when the ``WAVES`` environment variable asks for waveforms (1, yes, true, on)."""
    return os.environ.get("WAVES", "").strip().lower() in ("1", "yes", "true", "on")


@contextlib.contextmanager
def waves(sim, name=None):
    """Around an Amaranth ``sim.run()``: write ``build/waves/<name>.vcd`` when waves are on.

    ``name`` defaults to the running pytest test's id (``PYTEST_CURRENT_TEST``); characters a
    file name cannot hold are replaced.
    """
    if not waves_enabled():
        yield
        return
    if name is None:
        name = os.environ.get("PYTEST_CURRENT_TEST", "waves").split(" ")[0].split("::")[-1]
    WAVES_DIR.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^\w.-]+", "_", name)
    with sim.write_vcd(str(WAVES_DIR / f"{safe}.vcd")):
        yield
