"""The command-line tools' two error types: bad input (exit status 2) and a failed tool
(exit status 1)."""

from __future__ import annotations

__all__ = ["BuildError", "ToolError"]


class BuildError(Exception):
    """A problem with the user's request (exit status 2): the message says what and how to fix."""


class ToolError(RuntimeError):
    """A tool of the flow (Yosys, nextpnr, a packer) failed or is missing (exit status 1).

    The message is one line naming the step, the tool and its log file.
    """

    def __init__(self, step, tool, log, reason):
        self.step, self.tool, self.log = step, tool, log
        super().__init__(f"{step} failed: {tool} {reason}; see {log}")
