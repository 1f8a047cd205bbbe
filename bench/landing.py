"""The landing sensor's tick on a landing with a long history: N files
already ingested (default 200k; an API-fed landing gets one file per call)
and 10 new ones.

Two layouts of the same files, measured in the same run with the same code:
- kept: the ingested files stay in the landing, as they did before a
  successful ingest moved them out (`ledger/landing.archive`), and as a
  store that cannot delete conditionally still keeps them; the tick's
  cursor, which holds every listed path, holds them all;
- archived: they are under `.ingested/`, which the scan never enters.

For each: the tick's wall time (best of --repeat), the landing listing alone,
and the cursor the tick writes (Dagster keeps it with every tick record, one
every 30 s). target: tick with 200k ingested files within 2x of an empty landing's

Run: python bench/landing.py [--files 200000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import common

sys.path.insert(0, str(common.CODE))

NEW = 10
LINE = ('{"tenantId":"t","metric":"api_calls","customerRef":"cus_%d","quantity":"1",'
        '"ts":"2025-01-01T00:00:00Z","idempotencyKey":"k%d"}\n')


def write_files(folder: Path, names: range, prefix: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in names:
        (folder / f"{prefix}{i:07d}.jsonl").write_text(LINE % (i, i))


def tick(url: str, cursor: str | None, repeat: int) -> tuple[float, float, str]:
    """(best tick seconds, best listing seconds, the cursor the tick wrote)."""
    import dagster as dg

    from stripemeter_assets.ledger.landing import list_ready_files
    from stripemeter_assets.resources import LandingResource
    from stripemeter_assets.sensors import landing_sensor

    ticks, listings, written = [], [], ""
    with dg.DagsterInstance.ephemeral() as instance:
        for _ in range(repeat):
            start = time.perf_counter()
            list_ready_files(url, settle=0)
            listings.append(time.perf_counter() - start)
            context = dg.build_sensor_context(instance=instance, cursor=cursor,
                                              resources={"landing": LandingResource(url=url, settle_seconds=0)})
            start = time.perf_counter()
            result = landing_sensor.evaluate_tick(context)
            ticks.append(time.perf_counter() - start)
            assert len(result.run_requests) == 1, "the new files are requested"
            written = result.cursor
    return min(ticks), min(listings), written


def cursor_of(folder: Path) -> str:
    """What the previous tick wrote: every file listed then (not the new ones)."""
    import json

    from stripemeter_assets.ledger.landing import list_ready_files
    return json.dumps({f.path: f.version for f in list_ready_files(str(folder), settle=0)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=200_000, help="files ingested earlier (default 200k)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    common.log(f"landing bench: {args.files:,} ingested files + {NEW} new; {common.load()}")
    with common.bench_dir("landing") as root:
        results = {}
        for layout in ("empty", "kept", "archived"):
            folder = root / layout
            if layout == "kept":
                write_files(folder, range(args.files), "old-")
            elif layout == "archived":
                write_files(folder / ".ingested" / "2025-01-01" / "batch", range(args.files), "old-")
            folder.mkdir(exist_ok=True)
            before = cursor_of(folder)
            write_files(folder, range(NEW), "new-")
            common.log(f"{layout}: ticking")
            results[layout] = tick(str(folder), before, args.repeat)
    print(f"landing sensor tick ({args.files:,} ingested files, {NEW} new; best of {args.repeat}; {common.load()})")
    base = results["empty"][0]
    for layout, label in (("empty", "no history"), ("kept", "ingested files kept in the landing (before)"),
                          ("archived", "ingested files under .ingested/ (now)")):
        seconds, listing, cursor = results[layout]
        print(f"  {label:<48} tick {common.fmt_s(seconds):>8} ({seconds / base:5.1f}x no history), "
              f"listing {common.fmt_s(listing):>8}, cursor {len(cursor) / 1e6:6.2f} MB "
              f"= {len(cursor) * 2880 / 1e9:5.2f} GB of tick records a day")


if __name__ == "__main__":
    main()
