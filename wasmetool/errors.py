"""The single user-facing error type.

Every failure a user can cause or fix (bad reference, missing file, corrupt
store, unreachable registry...) is raised as :class:`WasmetoolError`.  The CLI
prints it as one line on stderr, ``error: <message> (<hint>)``, and exits 1.
Anything else that escapes is a bug and is reported as such.
"""

from __future__ import annotations


class WasmetoolError(Exception):
    """An error the user can act on: what is wrong, and what to do about it."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        text = self.message.rstrip(".")
        if self.hint:
            text += f" ({self.hint.rstrip('.')})"
        return " ".join(text.split())

    def __str__(self) -> str:
        return self.one_line()
