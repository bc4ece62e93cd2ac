"""Turning the metrics API's answers into what ``run.get_metrics()`` returns."""

from typing import Any, Dict, List

__all__ = ["combine_metric", "decode_number"]

_SPECIAL = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}


def decode_number(value: Any) -> Any:
    """``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` back to floats; anything else as it is."""
    if isinstance(value, str) and value in _SPECIAL:
        return _SPECIAL[value]
    return value


def _decode_deep(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode_deep(v) for v in value]
    if isinstance(value, dict):
        return {k: _decode_deep(v) for k, v in value.items()}
    return decode_number(value)


def combine_metric(kind: str, values: List[Any]) -> Any:
    """One metric's values (oldest first) in Azure ML's ``get_metrics`` shape.

    * scalar: the value when logged once, else the list of values;
    * list: the list when logged once, else the list of lists;
    * row: the rows merged into ``{column: [values]}`` (``None`` where a row lacks one);
    * table: the columns, extended by each table logged after the first;
    * image: the file path when logged once, else the list of paths.
    """
    values = [_decode_deep(v) for v in values]
    if kind == "row":
        columns: Dict[str, List[Any]] = {}
        for index, row in enumerate(values):
            for key, cell in (row or {}).items():
                columns.setdefault(key, [None] * index).append(cell)
            for column in columns.values():
                if len(column) < index + 1:
                    column.append(None)
        return columns
    if kind == "table":
        merged: Dict[str, List[Any]] = {}
        for table in values:
            for key, cells in (table or {}).items():
                merged.setdefault(key, []).extend(cells if isinstance(cells, list) else [cells])
        return merged
    if kind == "image":
        values = [v.get("path") if isinstance(v, dict) else v for v in values]
    if len(values) == 1:
        return values[0]
    return values
