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


# What to do about an OSError, by errno name: the hint half of the one line.
_OS_HINTS = {
    "EACCES": "check its permissions, or choose a path you can write",
    "EPERM": "the system does not allow this here; choose another path",
    "EROFS": "that file system is read-only; choose a writable path",
    "ENOENT": "check that the path exists",
    "ENOTDIR": "a part of the path is a file, not a directory",
    "EISDIR": "it is a directory; give a file path",
    "EEXIST": "something is already there; choose another path or remove it",
    "ENOSPC": "the disk is full; free some space",
    "EDQUOT": "the disk quota is used up; free some space",
    "ENAMETOOLONG": "choose a shorter path",
    "ELOOP": "the path has a symbolic-link loop",
    "EADDRINUSE": "another process listens there; choose another port",
    "EADDRNOTAVAIL": "that address is not one of this machine's",
    "ECONNREFUSED": "nothing listens there; check the address",
}


def from_os_error(exc: OSError) -> WasmetoolError:
    """The one-line user error for an OSError that reached the CLI (never a traceback)."""
    import errno as errno_module

    code = errno_module.errorcode.get(exc.errno or 0, "")
    reason = exc.strerror or str(exc) or type(exc).__name__
    where = exc.filename
    if where is not None and exc.filename2 is not None:
        message = f"{where} -> {exc.filename2}: {reason}"
    elif where is not None:
        message = f"{where}: {reason}"
    else:
        message = reason
    return WasmetoolError(message, _OS_HINTS.get(code, "check the path or address and try again"))
