"""Dialect-aware SQL expressions the reports need: UTC day, seconds between two times, percentiles."""

from __future__ import annotations

from sqlalchemy import ColumnElement, Float, Integer, case, cast, func, literal_column, select, tuple_
from sqlalchemy.sql import Subquery


def utc_day(column, dialect: str) -> ColumnElement[str]:
    """`YYYY-MM-DD` of a UTC time; literals are inlined so GROUP BY matches the select list on PostgreSQL."""
    if dialect == "postgresql":
        utc = func.timezone(literal_column("'UTC'"), column)
        return func.to_char(utc, literal_column("'YYYY-MM-DD'"))
    return func.date(column)  # SQLite stores UTC text, so date() is already the UTC day


def seconds_between(start, end, dialect: str) -> ColumnElement[float]:
    """`end - start` in seconds, never negative, NULL when either is NULL."""
    if dialect == "postgresql":
        seconds = func.round(func.extract("epoch", end - start), 3)  # numeric on PostgreSQL 14+
    else:
        # julianday() carries ~40 µs of float noise; rounding to milliseconds keeps bucket edges exact.
        seconds = func.round((func.julianday(end) - func.julianday(start)) * 86400.0, 3)
    # A receipt parked before its sent message was registered can precede it: count that as instant.
    return case((end.is_(None), None), (start.is_(None), None), (seconds < 0, 0.0), else_=cast(seconds, Float))


def count_if(condition) -> ColumnElement[int]:
    """How many rows of the group meet `condition` (portable FILTER)."""
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def percentiles(
    source: Subquery, dims: list[str], value: str, fractions: tuple[float, ...], dialect: str, *, total: bool = False
):
    """A grouped select of continuous percentiles of `source.c[value]`, one column `p<fraction>` each.

    PostgreSQL uses percentile_cont; with `total` (PostgreSQL and dims only) the same pass also returns
    the all-rows percentiles, through GROUPING SETS, in the row whose `is_total` column is true.
    SQLite ranks rows with window functions and returns the two neighbouring values and the fraction
    between them (`lo_`, `hi_`, `frac_` columns) for interpolate().
    """
    keys = [source.c[name] for name in dims]
    measured = source.c[value]
    if dialect == "postgresql":
        columns = [
            func.percentile_cont(literal_column(repr(p))).within_group(measured).label(f"p{p}") for p in fractions
        ]
        statement = select(*keys, *columns).where(measured.is_not(None))
        if total and keys:
            return statement.add_columns((func.grouping(*keys) > 0).label("is_total")).group_by(
                func.grouping_sets(tuple_(*keys), literal_column("()"))
            )
        return statement.group_by(*keys)
    ranked = select(
        *keys,
        measured.label("measured"),
        (func.row_number().over(partition_by=keys or None, order_by=measured) - 1).label("rank"),
        func.count().over(partition_by=keys or None).label("n"),
    ).where(measured.is_not(None)).subquery()
    ranked_keys = [ranked.c[name] for name in dims]
    columns = []
    for p in fractions:
        position = literal_column(repr(p)) * (ranked.c.n - 1)
        low = cast(position, Integer)
        high = func.min(low + 1, ranked.c.n - 1)  # two-argument min() is SQLite's scalar min
        columns += [
            func.max(case((ranked.c.rank == low, ranked.c.measured))).label(f"lo_{p}"),
            func.max(case((ranked.c.rank == high, ranked.c.measured))).label(f"hi_{p}"),
            func.max(position - low).label(f"frac_{p}"),
        ]
    return select(*ranked_keys, *columns).group_by(*ranked_keys)


def interpolate(row, fraction: float, dialect: str) -> float | None:
    """The percentile value of one grouped row from percentiles() (linear, like percentile_cont)."""
    mapping = row._mapping
    if dialect == "postgresql":
        return mapping[f"p{fraction}"]
    low, high, between = mapping[f"lo_{fraction}"], mapping[f"hi_{fraction}"], mapping[f"frac_{fraction}"]
    if low is None:
        return None
    return low + (between or 0.0) * ((high if high is not None else low) - low)
