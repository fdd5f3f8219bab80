"""The run store (DuckDB): runs, parameter samples and outcome series, crash-safe and resumable."""

from aftermath.store.database import DEFAULT_STORE, SCHEMA_VERSION, Store, StoredRun, StoreError

__all__ = ["DEFAULT_STORE", "SCHEMA_VERSION", "Store", "StoreError", "StoredRun"]
