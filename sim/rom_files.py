"""Memory contents out of the simulation Verilog, into ``$readmemh`` files.

Yosys' ``write_verilog`` (behind Amaranth's ``verilog.convert``) initialises every memory word by
word inside an ``initial`` block: for the whole real model that is more than a million
statements, which Verilator then parses, optimises and compiles into C++ for minutes. The same
contents loaded by ``$readmemh`` at time 0 are data, not code: Verilator and Icarus read them
when the simulation starts, and the behaviour is the same (the block is still an ``initial``
that sets every word before the first clock edge).

:func:`externalise` rewrites every such block of at least ``min_words`` words whose values are
plain numbers (no ``x``/``z``) and whose indices run 0, 1, 2, ... into one ``$readmemh`` line
and writes the hex file it names.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["externalise"]

_BLOCK = re.compile(r"^(?P<indent> *)initial begin\n(?P<body>(?:(?P=indent)  [\w$]+\[\d+\] = "
                    r"\d+'[hdb][0-9a-fA-F_]+;\n)+)(?P=indent)end\n", re.MULTILINE)
_WORD = re.compile(r" *([\w$]+)\[(\d+)\] = (\d+)'([hdb])([0-9a-fA-F_]+);")
_BASES = {"h": 16, "d": 10, "b": 2}


def _words(body):
    """(memory name, width, values) of a block's lines, or None if it is not a plain 0..n-1
    initialisation of one memory."""
    name, width, values = None, None, []
    for index, line in enumerate(body.splitlines()):
        match = _WORD.fullmatch(line)
        if match is None:
            return None
        mem, at, bits, base, digits = match.groups()
        if (name not in (None, mem)) or int(at) != index or (width not in (None, int(bits))):
            return None
        name, width = mem, int(bits)
        values.append(int(digits.replace("_", ""), _BASES[base]))
    return name, width, values


def externalise(text, directory, *, min_words=64):
    """``text`` with its large memory initialisations replaced by ``$readmemh`` of files
    written into ``directory`` (created; absolute paths in the Verilog). Returns the new text.
    """
    directory = Path(directory).resolve()
    pieces, last, count = [], 0, 0
    for block in _BLOCK.finditer(text):
        words = _words(block.group("body"))
        if words is None or len(words[2]) < min_words:
            continue
        name, width, values = words
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"mem{count}-{name.strip(chr(92))}.hex"
        digits = max(1, -(-width // 4))
        path.write_text("".join(f"{v:0{digits}x}\n" for v in values))
        pieces += [text[last:block.start()],
                   f'{block.group("indent")}initial $readmemh("{path}", {name});\n']
        last = block.end()
        count += 1
    return "".join(pieces) + text[last:]
