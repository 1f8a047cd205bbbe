"""Child process for the push kill -9 tests (not a test module).

    python -m tests.push._push_child PHASE[#N]

Materializes `stripe_push` for 2025-03 through Dagster, as production does,
and SIGKILLs itself the N-th time (default 1) it reaches PHASE:

    planned      the plan is written, its transaction not committed yet
    sent         Stripe accepted a meter event, its acknowledgement not stored
    recorded     outcomes written, their transaction not committed yet
    committed    outcomes committed
    pulled       Stripe's error reports pulled and applied

The seams are patched here, in the child, never in production code."""

import os
import signal
import sys
from collections import Counter

_seen: Counter = Counter()


def _at(phase: str) -> None:
    target, _, nth = sys.argv[1].partition("#")
    _seen[phase] += 1
    if phase == target and _seen[phase] == int(nth or 1):
        print(f"KILLED {phase}#{_seen[phase]}", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)


def _after(module, name: str, phase: str) -> None:
    real = getattr(module, name)

    def wrapped(*args, **kwargs):
        result = real(*args, **kwargs)
        _at(phase)
        return result

    setattr(module, name, wrapped)


def main() -> None:
    import dagster as dg

    from stripemeter_assets.push.assets import stripe_push
    from stripemeter_assets.push import client, meter_errors, outbox, run
    from stripemeter_assets.resources import WarehouseResource
    from stripemeter_assets.resources import StripeResource

    _after(outbox, "write_plan", "planned")
    _after(client.Gateway, "create_meter_event", "sent")
    _after(outbox, "record_outcomes", "recorded")
    real_store = run._Run.store

    def store(self, outcomes, **kw):
        real_store(self, outcomes, **kw)
        _at("committed")

    run._Run.store = store
    _after(meter_errors, "pull_error_reports", "pulled")
    dg.materialize([stripe_push], partition_key="2025-03-01",
                   resources={"warehouse": WarehouseResource(),
                              "stripe": StripeResource(pacing=False, max_workers=1)})
    print("DONE", flush=True)


if __name__ == "__main__":
    main()
