"""Writing the bench's files: replaced atomically, never written through a link.

A report folder is often shared or reused: an ``index.html`` or ``results.json`` there may be
a symlink (planted or forgotten) to a file elsewhere. Writing through it would overwrite that
file. Instead the text goes to a new file in the same folder, created exclusively (a link at
that name is refused, not followed), which then replaces the path with ``os.replace``: the
link itself is replaced, its target is untouched, and a reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

__all__ = ["replace_file"]


def replace_file(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` by atomic replacement; returns the path.

    The new file gets the usual permissions (0666 less the umask).

    Raises:
        OSError: the folder cannot be written, or ``path`` is a folder.
    """
    target = Path(path)
    temp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    descriptor = os.open(temp, flags, 0o666)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    return target
