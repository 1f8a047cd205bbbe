"""A stateful Stripe emulator for stripemeter's tests and demo (DESIGN §8).

A real HTTP server on 127.0.0.1 that the real ``stripe`` SDK talks to: customers, billing
meters, meter events (Stripe's validations and identifier dedupe), meter event
adjustments, meter event summaries and idempotency keys, with test hooks to freeze the
clock, inject 429/5xx/409/dropped connections and inspect or tamper with stored usage.
"""

from .server import EmulatorServer, main

__all__ = ["EmulatorServer", "main"]
