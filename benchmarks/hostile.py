"""How long the hostile inputs of tests/test_limits.py take to be refused.

Run from the repository root: `python benchmarks/hostile.py`. Each case is
`irc check` in a fresh interpreter, measured as the test measures it (wall
time from spawn, peak RSS of the CLI alone), median of 3, beside
`python -c pass` in the same run. tests/test_limits.py's time bound is at
least 10x the slowest figure here, so that a loaded machine cannot fail it;
this table is where the tight figures live.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.test_limits import ADMITTED_SECONDS, CASES, TIME_LIMIT_S, WITHIN_LIMITS, measure  # noqa: E402


def main() -> None:
    start = time.perf_counter()
    for _ in range(3):
        subprocess.run([sys.executable, "-c", "pass"], check=True)
    python = (time.perf_counter() - start) / 3
    print(f"`python -c pass`: {python:.3f} s; test bound: {TIME_LIMIT_S:.0f} s\n")
    print("| case | exit | median time | x `python -c pass` | peak |")
    print("|---|---|---:|---:|---:|")
    slowest = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "hostile.yaml"
        for name, (text, _) in sorted(CASES.items()):
            spec.write_text(text, encoding="utf-8")
            runs = [measure("check", str(spec), cwd=Path(tmp)) for _ in range(3)]
            seconds = statistics.median(r.seconds for r in runs)
            peak = max(r.peak_mb for r in runs)
            slowest = max(slowest, seconds)
            print(
                f"| {name} | {runs[0].returncode} | {seconds:.2f} s | "
                f"{seconds / python:.1f} | {peak:.0f} MB |"
            )
        print(f"\nslowest: {slowest:.2f} s; bound / slowest: {TIME_LIMIT_S / slowest:.1f}\n")
        print("| admitted spec | exit | time | peak | bound / time |")
        print("|---|---|---:|---:|---:|")
        for name, text in sorted(WITHIN_LIMITS.items()):
            spec.write_text(text, encoding="utf-8")
            run = measure("check", str(spec), cwd=Path(tmp), timeout=ADMITTED_SECONDS)
            print(
                f"| {name} | {run.returncode} | {run.seconds:.2f} s | {run.peak_mb:.0f} MB | "
                f"{ADMITTED_SECONDS / run.seconds:.1f} |"
            )


if __name__ == "__main__":
    main()
