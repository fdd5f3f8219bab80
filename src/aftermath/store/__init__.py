"""The run store (DuckDB). `DEFAULT_STORE` and `StoreError` are light; the rest is imported on first use
(PEP 562), so a command that only names the default store does not load DuckDB, pandas and pyarrow."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aftermath.errors import StoreError

if TYPE_CHECKING:
    from aftermath.store.database import SCHEMA_VERSION, Store, StoredRun

DEFAULT_STORE = Path("aftermath.duckdb")
_LAZY = ("SCHEMA_VERSION", "Store", "StoredRun")

__all__ = ["DEFAULT_STORE", "SCHEMA_VERSION", "Store", "StoreError", "StoredRun"]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'aftermath.store' has no attribute {name!r}")
    return getattr(importlib.import_module("aftermath.store.database"), name)
