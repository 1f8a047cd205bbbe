"""The `stripemeter` command line (`commands`) and what it runs headless:
sensors and runs through the instance (`runner`), the demo, synthetic
events, replays, simulations and backtests."""

import sys

EXIT_BAD_INPUT = 2


def fail(message: str) -> int:
    """One line on stderr, the bad-input exit status: stdout stays clean for piping."""
    print(f"error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT
