"""Wall time of `manage.py check` (settings, apps, admin, URL and model checks), side by side
for one or more checkouts of the project, with this interpreter.

    python bench/command_startup.py . [../glimpse-old] [--repeat 5]

Each checkout runs once untimed first (a warm file cache), then --repeat times; medians.
All checkouts use the data folder of the first, so none starts servers of its own.
"""
import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from common import median, table


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkouts", type=Path, nargs="+")
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()
    environment = {**os.environ, "GLIMPSE_DATA_DIR": os.environ.get("GLIMPSE_DATA_DIR", str(options.checkouts[0].resolve() / ".glimpse"))}
    rows = []
    for checkout in options.checkouts:
        command = [sys.executable, "-X", "importtime", "manage.py", "check"]
        seconds = []
        for attempt in range(options.repeat + 1):
            started = time.perf_counter()
            result = subprocess.run(command, cwd=checkout, env=environment, capture_output=True, text=True, check=True)
            if attempt:
                seconds.append(time.perf_counter() - started)
        heavy = sorted({line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.split("|")[-1].strip() in ("torch", "timm", "transformers")})
        rows.append([str(checkout), f"{median(seconds):.2f}", f"{min(seconds):.2f}", ", ".join(heavy) or "none"])
        print(f"{checkout}: {', '.join(f'{value:.2f}' for value in seconds)} s", file=sys.stderr, flush=True)
    print(f"manage.py check, median of {options.repeat} warm runs")
    print(table(["checkout", "median s", "best s", "model libraries imported"], rows))


if __name__ == "__main__":
    main()
