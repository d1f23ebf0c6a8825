"""The specs that ship with irc, by name: `irc:irv2` is specs/irv2.yaml.

`extends:`, every command that takes a spec and the Python API accept the
name. Imports nothing beyond the standard library, so the command line can
tell a name from a file before it loads PyYAML.
"""

from __future__ import annotations

import difflib
from pathlib import Path

# specs/ installs as irc_cnn.specs beside irc_cnn.compiler (pyproject's
# package-dir), and in the repository it is this package's sibling folder too,
# so one path serves an editable install and a wheel alike.
SHIPPED_PREFIX = "irc:"
SHIPPED = Path(__file__).resolve().parent.parent / "specs"


def shipped_names() -> list[str]:
    """Every shipped spec's name: its path under specs/ without `.yaml` (`variants/irv2_small`)."""
    return sorted(
        p.relative_to(SHIPPED).with_suffix("").as_posix() for p in SHIPPED.rglob("*.yaml")
    )


class UnknownShippedSpec(LookupError):
    """`irc:NAME` where no shipped spec has that name; `hint` names the closest ones."""

    def __init__(self, target: str) -> None:
        close = difflib.get_close_matches(
            target[len(SHIPPED_PREFIX) :], shipped_names(), n=3, cutoff=0.5
        )
        suggestion = (
            f"did you mean {', '.join(SHIPPED_PREFIX + c for c in close)}? " if close else ""
        )
        super().__init__(f"no shipped spec named {target!r}")
        self.hint = f"{suggestion}`irc specs` lists the shipped specs"


def is_shipped(spec: str | Path) -> bool:
    """Whether a spec argument names a shipped spec (`irc:NAME`) rather than a file."""
    return isinstance(spec, str) and spec.startswith(SHIPPED_PREFIX)


def shipped_file(target: str) -> Path:
    """The file behind `irc:NAME`; UnknownShippedSpec if no shipped spec has that name."""
    name = target[len(SHIPPED_PREFIX) :]
    if name not in shipped_names():
        raise UnknownShippedSpec(target)
    return SHIPPED / f"{name}.yaml"


def shipped_display(path: Path) -> str | None:
    """`irc:NAME` for a file inside the shipped specs, else None."""
    try:
        name = path.resolve().relative_to(SHIPPED).with_suffix("").as_posix()
    except ValueError:
        return None
    return SHIPPED_PREFIX + name
