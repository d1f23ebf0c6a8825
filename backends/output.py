"""Where generated files go: the output folder, the command that regenerates
them, and writing them all or nothing. Shared by every code backend."""

from __future__ import annotations

import os
import shlex
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

DEFAULT_OUT = "generated"  # `irc compile`'s output folder unless --out says otherwise


def regenerate_command(
    paths: Sequence[str],
    out: str,
    sets: Sequence[str],
    backend: str = "keras",
    scale: str | None = None,
) -> str:
    """The `irc compile` command that writes these files again, as a shell line."""
    words = ["irc", "compile", *paths]
    if Path(out) != Path(DEFAULT_OUT):
        words += ["--out", out]
    if scale is not None:
        words += ["--scale", scale]
    for argument in sets:
        words += ["--set", argument]
    if backend != "keras":
        words += ["--backend", backend]
    return shlex.join(words)


def stale(files: dict[str, str], out: Path) -> list[str]:
    """The files whose content in `out` differs from (or lacks) the given one."""
    return [
        name
        for name, text in sorted(files.items())
        if not (out / name).is_file() or (out / name).read_text(encoding="utf-8") != text
    ]


def write(files: dict[str, str], out: Path) -> list[str]:
    """Write the changed files all or nothing.

    Every new file is staged as a temporary file beside its target first; the
    old files are kept as backups until every replacement has succeeded, and
    put back if one fails. Temporary files never outlive the call.
    """
    if not out.is_dir():
        raise FileNotFoundError(2, "not a folder", str(out))
    changed = stale(files, out)
    mode = _file_mode()
    staged: dict[str, str] = {}
    backups: dict[str, str] = {}
    replaced: list[str] = []
    try:
        for name in changed:
            fd, staged[name] = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=out)
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
                handle.write(files[name])
            os.chmod(staged[name], mode)
        for name in changed:
            if (out / name).exists():
                fd, backups[name] = tempfile.mkstemp(prefix=f".{name}.", suffix=".bak", dir=out)
                os.close(fd)
                shutil.copy2(out / name, backups[name])  # mkstemp's name: no race, unlike mktemp
        for name in changed:
            os.replace(staged[name], out / name)
            del staged[name]
            replaced.append(name)
    except BaseException:
        for name in replaced:  # put the old content back
            if name in backups:
                os.replace(backups.pop(name), out / name)
            else:
                os.unlink(out / name)
        raise
    finally:
        for leftover in [*staged.values(), *backups.values()]:
            if os.path.exists(leftover):
                os.unlink(leftover)
    return changed


def _file_mode() -> int:
    """The mode a plain `open()` would give a new file (0644 under the usual umask)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask
