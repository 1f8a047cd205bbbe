"""The `stripemeter` command line."""

import argparse
import sys
import warnings
from pathlib import Path

from stripemeter_assets import settings
from stripemeter_assets.api.commands import add_parsers as add_api_parsers
from stripemeter_assets.cli import backtest as backtest_cli



def _instance():
    from stripemeter_assets.cli.runner import local_instance

    return local_instance()


def _print_ledger_summary() -> None:
    from stripemeter_assets.warehouse import connect

    with connect(settings.warehouse_path()) as conn:
        for table in ("events", "quarantine", "landing_files", "late_events", "daily_usage", "period_usage",
                      "stripe_pushes", "reconciliation", "cost_projection"):
            count = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            print(f"  {table:<16} {count:>10,} rows")
        for label, sql in (("quarantine reasons", "SELECT reason, count(*) FROM quarantine GROUP BY ALL ORDER BY 2 DESC"),
                           ("push intents", "SELECT status, count(*) FROM stripe_pushes GROUP BY ALL ORDER BY 2 DESC"),
                           ("reconciliation", "SELECT status, count(*) FROM reconciliation GROUP BY ALL ORDER BY 2 DESC")):
            rows = conn.execute(sql).fetchall()
            if rows:
                print(f"  {label}: " + ", ".join(f"{r}={n}" for r, n in rows))


def cmd_catch_up(args: argparse.Namespace) -> int:
    from stripemeter_assets.definitions import defs
    from stripemeter_assets.cli.runner import catch_up

    return _print_runs(catch_up(defs, _instance()))


def cmd_gen_events(args: argparse.Namespace) -> int:
    from stripemeter_assets.cli.gen_events import GenSpec, generate, write_bulk_jsonl

    landing = args.landing or settings.landing_url()
    if args.bulk:
        path = Path(landing) / f"bulk-{args.events}-{args.seed}.jsonl"
        write_bulk_jsonl(path, args.events, seed=args.seed)
        print(f"wrote {args.events:,} events to {path}")
        return 0
    paths = generate(landing, GenSpec(events=args.events, files=args.files, seed=args.seed), now=settings.now())
    print(f"wrote {len(paths)} files ({args.events:,} events) to {landing}")
    return 0


def _print_runs(report) -> int:
    for run_id in report.released:
        print(f"released the pool slots of dead run {run_id} (marked failed)")
    for run in report.runs:
        print(f"{'ok    ' if run.success else 'FAILED'} {run.job:<18} {run.partitions:<24} run {run.run_id}")
    if not report.runs:
        print("nothing pending")
    if report.failed:
        print(f"{len(report.failed)} run(s) failed", file=sys.stderr)
        return 1
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from stripemeter_assets.definitions import defs
    from stripemeter_assets.cli.demo import run_demo

    status = _print_runs(run_demo(defs, _instance()))
    print(f"\nwarehouse {settings.warehouse_path()}:")
    _print_ledger_summary()
    return status


def cmd_replay(args: argparse.Namespace) -> int:
    from stripemeter_assets.definitions import defs
    from stripemeter_assets.counters.replay import diff_table
    from stripemeter_assets.cli.runner import QUIET_LOGS

    config = {"start": args.start, "end": args.end, "tenant": args.tenant, "dry_run": args.dry_run}
    result = defs.resolve_job_def("replay_job").execute_in_process(
        run_config={**QUIET_LOGS, "ops": {"replay_counters": {"config": config}}},
        instance=_instance(), raise_on_error=False)
    if not result.success:
        print("replay failed; see the run in the Dagster UI", file=sys.stderr)
        return 1
    replayed = result.output_for_node("replay_counters")
    print(diff_table(replayed))
    verb = "would apply" if args.dry_run else "applied"
    print(f"\n{len(replayed.diffs)} counters changed; {verb} {replayed.late_applied} late events"
          + (" (dry run: nothing written)" if args.dry_run else ""))
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from stripemeter_assets.cli.simulate import simulate_command

    return simulate_command(args.scenario)


def cmd_stripe_emulator(args: argparse.Namespace) -> int:
    from stripemeter_assets.stripe_emulator.server import main as emulator_main

    return emulator_main(args.rest)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stripemeter", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("demo", help="sample files if the landing is empty, catch up, push to the bundled Stripe "
                   "emulator and reconcile").set_defaults(func=cmd_demo)
    sub.add_parser("catch-up", help="ingest pending files, recompute stale counters, push, reconcile; then exit"
                   ).set_defaults(func=cmd_catch_up)

    gen = sub.add_parser("gen-events", help="write synthetic landing files")
    gen.add_argument("--events", type=int, default=20_000)
    gen.add_argument("--files", type=int, default=8)
    gen.add_argument("--seed", type=int, default=7)
    gen.add_argument("--landing", default=None)
    gen.add_argument("--bulk", action="store_true", help="one large JSONL file written by DuckDB (benchmarks)")
    gen.set_defaults(func=cmd_gen_events)

    rep = sub.add_parser("replay", help="apply late events in a range and recompute; prints the per-counter diff")
    rep.add_argument("--start", required=True, help="ISO date/time, inclusive (UTC)")
    rep.add_argument("--end", required=True, help="ISO date/time, exclusive (UTC)")
    rep.add_argument("--tenant", default=None)
    rep.add_argument("--dry-run", action="store_true", help="report the diff, write nothing")
    rep.set_defaults(func=cmd_replay)

    backtest_cli.add_parser(sub)

    sim = sub.add_parser("simulate", help="price a scenario JSON; prints only the invoice JSON")
    sim.add_argument("scenario")
    sim.set_defaults(func=cmd_simulate)

    add_api_parsers(sub)

    emu = sub.add_parser("stripe-emulator", help="run the local Stripe emulator (127.0.0.1 only)", add_help=False)
    emu.add_argument("rest", nargs=argparse.REMAINDER)
    emu.set_defaults(func=cmd_stripe_emulator)
    return parser


def main(argv: list[str] | None = None) -> int:
    # Dagster flags single-run backfill policies as beta on every import.
    warnings.filterwarnings("ignore", message=".*is currently in beta.*")
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
