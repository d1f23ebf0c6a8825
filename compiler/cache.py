"""A cache of clean `irc check` and `irc compile --check` results, so an unchanged
tree is not checked again.

pre-commit runs both on every commit, mostly on specs that did not change; a
full check costs about ten times Python's start (importing Pydantic and
building the schema's models dominate, benchmarks/README.md), a full
`compile --check` of specs/ about a second, while a hit imports none of
Pydantic, PyYAML or Jinja2. mypy and ruff do the same.

An entry is found by a key of everything the output can depend on: irc's
version and a hash of its own code and templates (so an edit to an editable
install invalidates every entry), the versions of Pydantic, PyYAML, Jinja2 and Python, the
current folder (output names files relative to it), every parsed option of
the command and the spec files the paths expand to. It holds the files the
result was built from (each spec and every file of its `extends` chain,
shipped `irc:` specs included) with the sha256 of the bytes that were
checked (for `compile --check`, also every generated file it compared), the
printed output and the exit code.
A hit needs every one of those files to hash the same now. Only clean results
(exit 0) are stored; a spec with errors is checked in full every time. A
missing, unreadable or corrupt entry is a miss, never an error, and so is a
cache folder that cannot be written.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .pipeline import Result

PACKAGE = Path(__file__).resolve().parent.parent  # holds compiler/ and backends/
CODE = ("compiler", "backends")
SKIPPED_OPTIONS = {"run", "no_cache"}  # the handler, and the flag that bypasses the cache
ENTRY_FORMAT = 1
# irc itself, and what decides whether a spec is valid besides irc's code.
DISTRIBUTIONS = {"irc_cnn", "pydantic", "pydantic_core", "pyyaml", "jinja2"}
SOURCES = ("*.py", "*.jinja")  # irc's code: modules and the templates backends print with

# A command without the cache: its exit code, its results, the other files it read.
Run = Callable[[argparse.Namespace], tuple[int, "list[Result]", list[Path]]]


def folder() -> Path:
    """$IRC_CACHE_DIR, else $XDG_CACHE_HOME/irc, else ~/.cache/irc."""
    if os.environ.get("IRC_CACHE_DIR"):
        return Path(os.environ["IRC_CACHE_DIR"])
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "irc"
    return Path.home() / ".cache" / "irc"


def versions() -> dict[str, str]:
    """irc's version and those of the libraries that decide what is valid, each
    as the first `.dist-info` folder on sys.path names it (which is what import
    finds).

    importlib.metadata reads the same folders but would cost more than the
    whole cache hit (about 90 ms of CPU to import).
    """
    found: dict[str, str] = {}
    for entry in sys.path:
        try:
            names = os.listdir(entry) if entry else []  # not '': the current folder
        except OSError:
            continue
        for name in names:
            project, _, rest = name.lower().partition("-")
            if project in DISTRIBUTIONS and rest.endswith(".dist-info"):
                found.setdefault(project, rest.removesuffix(".dist-info"))
    return dict(sorted(found.items()))


def code_fingerprint() -> str:
    """sha256 over the bytes of irc's own Python files and templates, in a fixed order."""
    digest = hashlib.sha256()
    for top in CODE:
        paths = {path for pattern in SOURCES for path in (PACKAGE / top).rglob(pattern)}
        for path in sorted(paths):
            digest.update(path.relative_to(PACKAGE).as_posix().encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def key(args: argparse.Namespace, files: Sequence[str | Path]) -> dict[str, Any]:
    """Everything the output depends on besides the files' contents.

    Every parsed option counts, whatever it is called, so an option added to
    `irc check` later is part of the key without a change here.
    """
    options = {
        name: value
        for name, value in sorted(vars(args).items())
        if name not in SKIPPED_OPTIONS and not callable(value)
    }
    return {
        "format": ENTRY_FORMAT,
        "versions": versions(),
        "code": code_fingerprint(),
        "python": sys.version,
        "cwd": os.getcwd(),
        "options": options,
        "files": [Path(path).as_posix() for path in files],  # or irc:NAME
    }


def _hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _entry_path(command: str, found: dict[str, Any]) -> Path:
    text = json.dumps(found, sort_keys=True, default=str)
    return folder() / command / f"{_hash(text.encode())}.json"


def dependencies(results: list[Result], others: Sequence[Path] = ()) -> list[list[str]]:
    """(path, sha256) of every file the results were built from, hashed from the
    text that was checked (not read again, so an edit during the check is a miss),
    then of the other files the command read (generated files it compared)."""
    found: dict[str, str] = {}
    for result in results:
        source = result.source
        if source is None:  # never read (a clean run reads all): nothing to key on
            raise OSError(f"{result.file} was not read")
        for name in source.chain:
            found[str(source.paths[name])] = _hash(source.texts[name].encode("utf-8"))
    for path in others:
        found[str(path.resolve())] = _hash(path.read_bytes())
    return [[path, digest] for path, digest in found.items()]


def lookup(path: Path, expected: dict[str, Any]) -> dict[str, Any] | None:
    """The entry at `path` if it is for this key and every file it read is unchanged."""
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
        if entry["key"] != json.loads(json.dumps(expected, default=str)):
            return None
        for file, digest in entry["files"]:
            if _hash(Path(file).read_bytes()) != digest:
                return None
        if not isinstance(entry["stdout"], str) or entry["exit"] != 0:
            return None
        return entry
    except (OSError, ValueError, KeyError, TypeError):
        return None


def store(path: Path, entry: dict[str, Any]) -> None:
    """Write atomically (a temporary file, then os.replace); give up quietly on failure."""
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(json.dumps(entry, default=str), encoding="utf-8")
        os.replace(temporary, path)
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink()


class _Tee(io.StringIO):
    """Keeps what a run prints, for its entry, and prints it at once: held back to the
    end, it would follow what the run wrote to stderr meanwhile (its summary line)."""

    def __init__(self, stream: Any) -> None:
        super().__init__()
        self.stream = stream

    def write(self, text: str) -> int:
        self.stream.write(text)
        return super().write(text)

    def flush(self) -> None:
        self.stream.flush()


def check(args: argparse.Namespace, files: Sequence[str | Path], run: Run, command: str) -> int:
    """Print what `run(args)` would print and return its exit code, from the cache
    when an entry matches; otherwise run it and store a clean result (entries of
    each `command` in a folder of their own)."""
    try:
        expected = key(args, files)
        path = _entry_path(command, expected)
    except (OSError, RuntimeError):  # no current folder (deleted) or no home: no cache
        return run(args)[0]
    entry = lookup(path, expected)
    if entry is not None:
        sys.stdout.write(entry["stdout"])
        return entry["exit"]
    buffer = _Tee(sys.stdout)
    with contextlib.redirect_stdout(buffer):
        code, results, others = run(args)
    if code != 0:
        return code
    try:
        read = dependencies(results, others)
    except OSError:  # a compared file gone or unreadable since: nothing to key on
        return code
    store(path, {"key": expected, "files": read, "stdout": buffer.getvalue(), "exit": code})
    return code
