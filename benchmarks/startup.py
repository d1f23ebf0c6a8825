"""How long the commands of a user's loop take, as ratios to `python -c pass`.

Run from the repository root with the venv's interpreter:
`.venv/bin/python benchmarks/startup.py`. Every command runs in a fresh
process (as pre-commit and CI run it), through the `irc` console script
beside the interpreter, interleaved with `python -c pass` round by round so
that both see the same load; the table gives medians and the ratio of
medians. Targets (issue 10): `irc --help` < 3x, `irc check specs/irv2.yaml`
< 5x, `irc compile --check specs` < 1.0 s.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROUNDS = 15

COMMANDS: dict[str, tuple[list[str], str]] = {
    "`irc --help`": (["--help"], "< 3x"),
    "`irc --version`": (["--version"], ""),
    "`irc codes`": (["codes"], ""),
    "`irc check specs/irv2.yaml`": (["check", "specs/irv2.yaml"], "< 5x"),
    "`irc check specs/`": (["check", "specs/"], ""),
    "`irc compile --check specs`": (["compile", "--check", "specs"], "< 1.0 s"),
}


def irc() -> list[str]:
    script = Path(sys.executable).parent / "irc"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "irc_cnn.compiler.cli"]


def once(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=False, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    base = [sys.executable, "-c", "pass"]
    times: dict[str, list[float]] = {"`python -c pass`": []} | {name: [] for name in COMMANDS}
    for name, (args, _) in COMMANDS.items():  # warm the file cache
        once(irc() + args)
    for _ in range(ROUNDS):
        times["`python -c pass`"].append(once(base))
        for name, (args, _) in COMMANDS.items():
            times[name].append(once(irc() + args))
    python = statistics.median(times["`python -c pass`"])
    print(f"{ROUNDS} rounds, medians\n")
    print("| command | time | x `python -c pass` | target |")
    print("|---|---:|---:|---|")
    print(f"| `python -c pass` | {python * 1000:.0f} ms | 1.0 | |")
    for name, (_, target) in COMMANDS.items():
        median = statistics.median(times[name])
        print(f"| {name} | {median * 1000:.0f} ms | {median / python:.1f} | {target} |")


if __name__ == "__main__":
    main()
