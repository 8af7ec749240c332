"""Arrow ↔ NumPy for the fast path's masks and positions, without pandas.

pyarrow converts a NumPy array (``pa.array``) and a boolean column (``to_numpy(zero_copy_only=
False)``) through its pandas shim, which imports pandas (~0.5 s of CPU in each backfill
worker, which otherwise never needs it); these build the buffers directly.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

_NUMERIC = {
    pa.int32(): np.int32,
    pa.int64(): np.int64,
    pa.uint64(): np.uint64,
    pa.float64(): np.float64,
}


def numpy_of(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A boolean or numeric (int32/int64/uint64/float64) column without nulls as NumPy (a
    view of a numeric column's buffer, zero copy)."""
    if isinstance(column, pa.ChunkedArray):
        parts = [numpy_of(c) for c in column.chunks]
        if parts:
            return np.concatenate(parts)
        return np.empty(0, bool if pa.types.is_boolean(column.type) else _NUMERIC[column.type])
    if column.null_count:
        raise ValueError("numpy_of: the column has nulls")
    if not pa.types.is_boolean(column.type):
        dtype = _NUMERIC[column.type]
        buf = column.buffers()[1]
        if buf is None:
            return np.empty(0, dtype)
        return np.frombuffer(
            buf, dtype=dtype, count=len(column), offset=column.offset * np.dtype(dtype).itemsize
        )
    if len(column) == 0:
        return np.empty(0, dtype=bool)
    bits = np.frombuffer(column.buffers()[1], dtype=np.uint8)
    unpacked = np.unpackbits(bits, bitorder="little")
    return unpacked[column.offset : column.offset + len(column)].astype(bool)


def arrow_of(values: np.ndarray) -> pa.Array:
    """A NumPy boolean or int64 array as an Arrow array (no nulls)."""
    if values.dtype == np.bool_:
        bits = np.packbits(values, bitorder="little")
        return pa.Array.from_buffers(pa.bool_(), len(values), [None, pa.py_buffer(bits)])
    data = np.ascontiguousarray(values, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), len(data), [None, pa.py_buffer(data)])


def scalar_of(value: int | bool, type_: pa.DataType) -> pa.Scalar:
    """An int64-backed (int, timestamp in its unit) or boolean Arrow scalar (``pa.scalar`` and
    a Python value passed to a compute function go through the pandas shim)."""
    if pa.types.is_boolean(type_):
        return arrow_of(np.array([value], dtype=bool))[0]
    return arrow_of(np.array([value], dtype=np.int64)).view(type_)[0]


def strings_of(values: tuple[str, ...] | list[str]) -> pa.Array:
    """Python strings as an Arrow string array (no nulls), built from its buffers."""
    data = [v.encode("utf-8") for v in values]
    offsets = np.zeros(len(data) + 1, dtype=np.int32)
    offsets[1:] = np.cumsum([len(d) for d in data], dtype=np.int64)
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(data))]
    return pa.Array.from_buffers(pa.string(), len(data), buffers)
