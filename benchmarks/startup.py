"""How long the commands of a user's loop take, as ratios to `python -c pass`.

Run from the repository root with the venv's interpreter:
`.venv/bin/python benchmarks/startup.py`. Every command runs in a fresh
process (as pre-commit and CI run it), through the `irc` console script
beside the interpreter, interleaved with `python -c pass` round by round so
that both see the same load; the table gives medians and the ratio of
medians, for wall time and for CPU time (user + system, read from the
children's rusage). On a shared, loaded machine the wall times swing with the
load and the CPU times do not, so both are shown. Targets (issue 10):
`irc --help` < 3x, `irc check specs/irv2.yaml` < 5x, `irc compile --check
specs` < 1.0 s.

`irc check` and `irc compile --check` cache clean results (compiler/cache.py);
the runs here use a cache folder of their own, which the warm-up run fills, so
each without `--no-cache` is the warm case (a hit: pre-commit's loop over
unchanged specs) and each with it the cold one (every stage, as for a spec
just edited).
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROUNDS = 15

COMMANDS: dict[str, tuple[list[str], str]] = {
    "`irc --help`": (["--help"], "< 3x"),
    "`irc --version`": (["--version"], ""),
    "`irc codes`": (["codes"], ""),
    "`irc check --no-cache specs/irv2.yaml` (cold)": (
        ["check", "--no-cache", "specs/irv2.yaml"],
        "",
    ),
    "`irc check specs/irv2.yaml` (warm: cache hit)": (["check", "specs/irv2.yaml"], "< 5x"),
    "`irc check --no-cache specs/` (cold)": (["check", "--no-cache", "specs/"], ""),
    "`irc check specs/` (warm: cache hit)": (["check", "specs/"], ""),
    "`irc compile --check --no-cache specs` (cold)": (
        ["compile", "--check", "--no-cache", "specs"],
        "",
    ),
    "`irc compile --check specs` (warm: cache hit)": (["compile", "--check", "specs"], "< 1.0 s"),
}


# As a user's machine runs it: compiled modules cached in __pycache__ (the
# warm-up run writes them), whatever this shell says.
# The check cache goes to a folder of this run's, never the user's.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
ENV["IRC_CACHE_DIR"] = tempfile.mkdtemp(prefix="irc-bench-cache-")


def irc() -> list[str]:
    script = Path(sys.executable).parent / "irc"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "irc_cnn.compiler.cli"]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def once(command: list[str]) -> tuple[float, float]:
    """(wall, cpu) seconds of one run in a fresh process."""
    cpu, start = _children_cpu(), time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=False, capture_output=True, env=ENV)
    return time.perf_counter() - start, _children_cpu() - cpu


def main() -> None:
    base = [sys.executable, "-c", "pass"]
    times: dict[str, list[tuple[float, float]]] = {"`python -c pass`": []}
    times |= {name: [] for name in COMMANDS}
    for name, (args, _) in COMMANDS.items():  # warm the file cache and irc's check cache
        once(irc() + args)
    for _ in range(ROUNDS):
        times["`python -c pass`"].append(once(base))
        for name, (args, _) in COMMANDS.items():
            times[name].append(once(irc() + args))

    def medians(name: str) -> tuple[float, float]:
        return tuple(statistics.median(run[i] for run in times[name]) for i in (0, 1))

    wall0, cpu0 = medians("`python -c pass`")
    print(f"{ROUNDS} rounds, medians\n")
    print("| command | wall | x `python -c pass` | CPU | x `python -c pass` | target |")
    print("|---|---:|---:|---:|---:|---|")
    print(f"| `python -c pass` | {wall0 * 1000:.0f} ms | 1.0 | {cpu0 * 1000:.0f} ms | 1.0 | |")
    for name, (_, target) in COMMANDS.items():
        wall, cpu = medians(name)
        print(
            f"| {name} | {wall * 1000:.0f} ms | {wall / wall0:.1f} | "
            f"{cpu * 1000:.0f} ms | {cpu / cpu0:.1f} | {target} |"
        )


if __name__ == "__main__":
    try:
        main()
    finally:
        shutil.rmtree(ENV["IRC_CACHE_DIR"], ignore_errors=True)
