"""Landing files -> deduplicated, immutable DuckDB ledger (DESIGN §2)."""

from stripemeter_assets.ledger.batch import BatchResult, FileResult, ingest_batch
from stripemeter_assets.ledger.landing import LandingFile, list_ready_files

__all__ = ["BatchResult", "FileResult", "LandingFile", "ingest_batch", "list_ready_files"]
