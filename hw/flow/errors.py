"""The one error type of the command-line tools' bad input."""

from __future__ import annotations

__all__ = ["BuildError"]


class BuildError(Exception):
    """A problem with the user's request (exit status 2): the message says what and how to fix."""
