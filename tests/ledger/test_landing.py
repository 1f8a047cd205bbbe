"""Archiving ingested files out of a local landing (ledger/landing.archive)."""

import os

from stripemeter_assets.ledger.landing import archive, list_ready_files
from tests.conftest import event


def test_a_file_replaced_after_its_batch_read_it_stays_in_the_landing(env):
    path = env.drop_jsonl("usage.jsonl", [event()])
    [read] = list_ready_files(str(env.landing), settle=0)
    env.drop_jsonl("usage.jsonl", [event(), event(quantity="7")])  # the producer publishes a new version
    assert archive(str(env.landing), [read], batch_id="b1", day="2025-03-20") == []
    assert path.read_text().count("\n") == 2
    assert not (env.landing / ".ingested" / "2025-03-20" / "b1" / "usage.jsonl").exists()


def test_a_file_that_cannot_move_stays_and_says_why(env):
    env.drop_jsonl("usage.jsonl", [event()])
    (env.landing / ".ingested").write_text("not a folder")
    [read] = list_ready_files(str(env.landing), settle=0)
    [problem] = archive(str(env.landing), [read], batch_id="b1", day="2025-03-20")
    assert "usage.jsonl stays in the landing" in problem
    assert list_ready_files(str(env.landing), settle=0) == [read]


def test_files_in_subfolders_keep_their_place_under_the_archive(env):
    (env.landing / "api" / "2025-03-20").mkdir(parents=True)
    os.rename(env.drop_jsonl("x.jsonl", [event()]), env.landing / "api" / "2025-03-20" / "x.jsonl")
    files = list_ready_files(str(env.landing), settle=0)
    assert archive(str(env.landing), files, batch_id="b1", day="2025-03-20") == []
    assert (env.landing / ".ingested" / "2025-03-20" / "b1" / "api" / "2025-03-20" / "x.jsonl").exists()
    assert list_ready_files(str(env.landing), settle=0) == []
