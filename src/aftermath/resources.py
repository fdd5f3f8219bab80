"""Limits on what a request may ask for, checked before any work starts: seeds and memory.

A seed is stored in the run store's BIGINT column and keys every random draw, so one range holds
everywhere (the command line, `simulate`, `design_experiment`): 0 to 2**63 - 1. A request whose
arrays would not fit in this machine's physical memory is refused with the figure, instead of
failing inside numpy after minutes (or allocating until the machine swaps).
"""

from __future__ import annotations

import os

from aftermath.errors import ResourceError

MAX_SEED = (1 << 63) - 1
"""The largest seed: a signed 64-bit integer, what the run store's BIGINT column holds."""
MAX_MEMBERS = (1 << 31) - 1
"""The most members (samples x replicates) one run may have: the run store numbers them as INTEGER."""


def check_seed(seed: int) -> int:
    """`seed` itself if 0 <= seed <= MAX_SEED; raises ResourceError otherwise (never masks it)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ResourceError(f"the seed {seed!r} is outside 0 to {MAX_SEED} (2^63 - 1)")
    return seed


def physical_memory() -> int | None:
    """This machine's physical memory in bytes (None where the system does not say)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # pragma: no cover - not POSIX
        return None


def require_memory(needed: float, what: str) -> None:
    """Refuse a request whose arrays need more bytes than the machine has (ResourceError with both figures)."""
    total = physical_memory()
    if total is not None and needed > total:
        raise ResourceError(
            f"{what} needs about {_size(needed)} of memory and this machine has {_size(total)}; ask for fewer"
        )


def _size(size: float) -> str:
    """Bytes in binary units, e.g. '29.1 TiB'."""
    unit = "bytes"
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if size < 1024 or unit == "PiB":
            break
        size /= 1024
    return f"{size:,.0f} bytes" if unit == "bytes" else f"{size:,.1f} {unit}"
