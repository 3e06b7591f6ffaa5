"""Read a query into one pandas frame a bounded chunk of rows at a time, typed exactly as one
``pd.read_sql`` of the whole result would type it.

One ``pd.read_sql`` holds every row as Python objects before it builds the frame: about ten times the
frame's memory. Read in chunks, each chunk infers its own types from the rows it holds (an all-NULL
chunk of a count gives ``object``, one with a NULL ``float64``, one without ``int64``), and a plain
concatenation then depends on where the NULLs fall. Here each column's kind comes from the query's
declared types, every chunk is carried in a type that holds NULLs as such, and the frame is then typed
as the whole result would be, by what the whole result holds:

==========  =======================  ================================  =========================
kind        values, no NULL          values and NULLs                  no values (or no rows)
==========  =======================  ================================  =========================
int         ``int64``                ``float64`` (NaN)                 ``object`` (None)
float       ``float64``              ``float64`` (NaN)                 ``object`` (None)
bool        ``bool``                 ``object`` (True, False, None)    ``object`` (None)
str         ``str``                  ``str`` (NaN)                     ``object`` (None)
datetime    as read: naive on SQLite, UTC on Postgres (NaT)            ``object`` (None)
==========  =======================  ================================  =========================
"""

from __future__ import annotations

from contextlib import nullcontext
from datetime import datetime

import pandas as pd
from sqlalchemy import Connection, Engine, Select

# Rows read, and held as Python objects, at a time.
CHUNK_ROWS = 20_000
# The type each kind is carried in from chunk to chunk; str and datetime keep the type the chunks with
# values were read in (a chunk without values gets that type, all missing).
_CARRIERS: dict[type, str] = {int: "Int64", bool: "boolean", float: "float64"}
_KINDS = (int, float, bool, str, datetime)


def read_frame(source: Engine | Connection, query: Select) -> pd.DataFrame:
    """``pd.read_sql(query)``'s frame, same columns, values and types, read :data:`CHUNK_ROWS` rows at a
    time (a server-side cursor on Postgres); on a connection of its own from an engine, or in the
    transaction of the connection given (one of several reads that must see one moment:
    :meth:`.db.Store.consistent_read`)."""
    kinds = {column.name: column.type.python_type for column in query.selected_columns}
    if unknown := {name: kind for name, kind in kinds.items() if kind not in _KINDS}:
        raise TypeError(f"no chunked typing for the columns {unknown}")
    valued = dict.fromkeys(kinds, False)
    chunks = []
    streamed = query.execution_options(stream_results=True, yield_per=CHUNK_ROWS)
    with source.connect() if isinstance(source, Engine) else nullcontext(source) as conn:
        for chunk in pd.read_sql(streamed, conn, chunksize=CHUNK_ROWS):
            for name in kinds:  # all NULL reads as object; a float column may hold NaN itself
                valued[name] |= chunk[name].dtype != object or bool(chunk[name].notna().any())
            chunks.append(chunk.astype({name: _CARRIERS[kind] for name, kind in kinds.items() if kind in _CARRIERS}))
    for name in (name for name, kind in kinds.items() if kind not in _CARRIERS):
        typed = [chunk[name].dtype for chunk in chunks if chunk[name].dtype != object]
        for chunk in chunks if typed else ():
            if chunk[name].dtype == object:
                chunk[name] = pd.Series(index=chunk.index, dtype=typed[0])
    frame = pd.concat(chunks, ignore_index=True)
    for name, kind in kinds.items():
        column = frame[name]
        if not valued[name]:
            frame[name] = pd.Series([None] * len(frame), dtype=object)
        elif kind is int:
            frame[name] = column.astype("float64" if column.hasnans else "int64")
        elif kind is bool:
            frame[name] = column.to_numpy(dtype=object, na_value=None) if column.hasnans else column.astype(bool)
        elif isinstance(column.array, pd.arrays.ArrowStringArray):  # in one piece, as one read has it: a table
            # written from the chunks' pieces encodes its strings otherwise (the same values, other bytes)
            frame[name] = pd.array(column.array.__arrow_array__().combine_chunks(), dtype=column.dtype)
    return frame
