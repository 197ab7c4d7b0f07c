"""Instructions per proxied request: micro_pipeline.py under valgrind's callgrind.

Timings on a shared 2-vCPU VM move by 10-15 % between runs; instruction counts
do not, so this is the figure to compare two builds by.  Runs micro_pipeline
twice (-n SHORT and -n LONG) and divides the difference in instructions by the
difference in requests, which cancels start-up, imports and config compilation.

    python bench/micro_instructions.py [--config plain|routes] [--top 30]

Needs valgrind (apt-get install -y valgrind); about a minute per run.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHORT, LONG = 1000, 5000


def run(n: int, config: str, out: Path) -> None:
    cmd = [
        "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
        sys.executable, str(HERE / "micro_pipeline.py"), "-n", str(n), "--config", config,
    ]  # fmt: skip
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def per_function(path: Path) -> Counter[str]:
    """Exclusive instruction counts by function name, from callgrind_annotate."""
    text = subprocess.run(
        ["callgrind_annotate", "--threshold=100", "--inclusive=no", "--tree=none", "--auto=no", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    counts: Counter[str] = Counter()
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+) \([ \d.]+%\)\s+(.*?)(?: \[.*\])?$", line)
        if m and "PROGRAM TOTALS" not in line:
            counts[m.group(2).rsplit(":", 1)[-1]] += int(m.group(1).replace(",", ""))
    return counts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", choices=["plain", "routes"], default="plain")
    ap.add_argument("--top", type=int, default=0, help="also list the N costliest functions per request")
    args = ap.parse_args()
    if shutil.which("valgrind") is None:
        print("valgrind not found: apt-get install -y valgrind", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        short, long = Path(tmp, "short.out"), Path(tmp, "long.out")
        # No randomised str hashing: the same dict probes in both runs.
        os.environ["PYTHONHASHSEED"] = "0"
        run(SHORT, args.config, short)
        run(LONG, args.config, long)
        a, b = per_function(short), per_function(long)
    diff = {name: (b[name] - a.get(name, 0)) / (LONG - SHORT) for name in b}
    total = sum(diff.values())
    print(f"{args.config}: {total:,.0f} instructions per proxied request (callgrind, -n {LONG} minus -n {SHORT})")
    for name, ir in sorted(diff.items(), key=lambda kv: -kv[1])[: args.top]:
        print(f"{ir:9,.0f}  {100 * ir / total:5.1f} %  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
