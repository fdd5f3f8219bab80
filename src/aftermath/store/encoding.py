"""Lossless compact encoding of a block of outcome series (a range's members x months x strata) as bytes.

Whole numbers (every stochastic count) are stored as month-to-month differences along the time axis,
in the narrowest signed integer type that holds them (int8, int16, int32 or int64), then compressed
with Zstandard; anything else (shares, deterministic runs' counts, network measures, NaN) is stored
as float64 with its bytes shuffled (all first bytes, then all second bytes, ...), then compressed.
Both ways give back the very same float64 values, bit for bit (-0.0 takes the float path): nothing
is rounded.

Measured on 20 members of the default scenario (benchmarks/bench_store.py prints the store-level
figures): DuckDB's own compression of the series as lists takes 690 bytes per replicate-month even
with integer differences and float32; the blocks here take about 230, because Zstandard sees a whole
block and DuckDB's lightweight codecs (bitpacking, ALP) work value group by value group. Why
differences: cumulative counts and slowly moving stocks turn into small numbers (-33% against the
counts themselves); why the narrowest type: Zstandard does not squeeze the zero bytes of int32 as
well (-33% more).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

CODEC = pa.Codec("zstd", compression_level=3)
"""Zstandard (through Arrow, a dependency already) at its default level: level 19 saves 12% more and
takes 30 times the CPU."""
FLOAT = "float64"
DIFFERENCES = (1, 0, 2)
"""Orders of month-to-month differences tried for whole numbers (the first of equal sizes wins)."""
INTEGERS = {f"int{bits}-diff{order}": (np.dtype(f"int{bits}"), order) for bits in (8, 16, 32, 64)
            for order in DIFFERENCES}
ENCODINGS = (*INTEGERS, FLOAT)
_WHOLE_LIMIT = 2.0**50
"""Whole numbers below this (in size) take the integer path: a float64 holds them exactly and their
second differences fit int64."""


def encode_block(values: np.ndarray) -> tuple[str, bytes]:
    """(encoding name, compressed bytes) of a float64 array (members, time, ...); decode with
    `decode_block` and the same shape. Members go innermost (one month and stratum of every member
    side by side: similar numbers), then whole numbers are differenced along time."""
    values = np.ascontiguousarray(values, dtype=np.float64)
    if values.ndim < 2:
        raise ValueError(f"expected an array (members, time, ...), got shape {values.shape}")
    by_month = np.moveaxis(values, 0, -1)
    if not (np.isfinite(values).all() and np.abs(values).max(initial=0.0) < _WHOLE_LIMIT
            and (values == np.round(values)).all() and not np.signbit(values).any(where=values == 0)):
        return FLOAT, CODEC.compress(np.ascontiguousarray(by_month).tobytes(), asbytes=True)
    counts = by_month.astype(np.int64)
    best: tuple[str, bytes] | None = None
    for order in DIFFERENCES:
        steps = np.diff(counts, n=order, axis=0, prepend=np.zeros((order, *counts.shape[1:]), np.int64))
        dtype = _narrowest(steps)
        data = CODEC.compress(np.ascontiguousarray(steps, dtype).tobytes(), asbytes=True)
        if best is None or len(data) < len(best[1]):
            best = (f"int{dtype.itemsize * 8}-diff{order}", data)
    assert best is not None
    return best


def _narrowest(values: np.ndarray) -> np.dtype:
    for dtype, _ in INTEGERS.values():
        info = np.iinfo(dtype)
        if values.size == 0 or (values.min() >= info.min and values.max() <= info.max):
            return dtype
    raise AssertionError("differences of numbers under 2**50 fit int64")


def decode_block(encoding: str, data: bytes, shape: tuple[int, ...]) -> np.ndarray:
    """The float64 array `encode_block` was given, of `shape` (members, time, ...). ValueError for an
    unknown encoding or bytes that do not decode to that shape."""
    by_month = (*shape[1:], shape[0])
    count = int(np.prod(shape))
    if encoding == FLOAT:
        raw = CODEC.decompress(data, decompressed_size=8 * count, asbytes=True)
        return np.moveaxis(np.frombuffer(raw, np.float64).reshape(by_month), -1, 0).copy()
    if encoding not in INTEGERS:
        raise ValueError(f"unknown series encoding {encoding!r}; expected one of {', '.join(ENCODINGS)}")
    dtype, order = INTEGERS[encoding]
    raw = CODEC.decompress(data, decompressed_size=dtype.itemsize * count, asbytes=True)
    counts = np.frombuffer(raw, dtype).reshape(by_month).astype(np.int64)
    for _ in range(order):
        counts = np.cumsum(counts, axis=0)
    return np.moveaxis(counts, -1, 0).astype(np.float64)
