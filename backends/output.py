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
    """Write the changed files of one folder all or nothing (see write_all); their names."""
    return [path.name for path in write_all([(out, files)])]


def write_all(targets: Sequence[tuple[Path, dict[str, str]]]) -> list[Path]:
    """Write the changed files of every (folder, files) target all or nothing: the
    Keras modules and the torch ones of `--backend all` change together or not at all.

    Every new file is staged as a temporary file beside its target first; the
    old files are kept as backups until every replacement has succeeded, and
    put back if one fails. Temporary files never outlive the call.
    """
    for out, _ in targets:
        if not out.is_dir():
            raise FileNotFoundError(2, "not a folder", str(out))
    changed = [(out / name, files[name]) for out, files in targets for name in stale(files, out)]
    mode = _file_mode()
    staged: dict[Path, str] = {}
    backups: dict[Path, str] = {}
    replaced: list[Path] = []
    try:
        for path, text in changed:
            fd, staged[path] = tempfile.mkstemp(
                prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
            )
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
                handle.write(text)
            os.chmod(staged[path], mode)
        for path, _ in changed:
            if path.exists():
                fd, backups[path] = tempfile.mkstemp(
                    prefix=f".{path.name}.", suffix=".bak", dir=path.parent
                )
                os.close(fd)
                shutil.copy2(path, backups[path])  # mkstemp's name: no race, unlike mktemp
        for path, _ in changed:
            os.replace(staged[path], path)
            del staged[path]
            replaced.append(path)
    except BaseException:
        for path in replaced:  # put the old content back
            if path in backups:
                os.replace(backups.pop(path), path)
            else:
                os.unlink(path)
        raise
    finally:
        for leftover in [*staged.values(), *backups.values()]:
            if os.path.exists(leftover):
                os.unlink(leftover)
    return [path for path, _ in changed]


def _file_mode() -> int:
    """The mode a plain `open()` would give a new file (0644 under the usual umask)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask
