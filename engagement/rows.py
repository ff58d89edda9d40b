"""Model instances from rows of hand-written SQL, for the few hot paths where building the ORM's
statement costs more than running it (issue 10: a signed inbound webhook, identity resolution).

The statement lists the model's concrete columns (:func:`columns`); :func:`model_from_row` converts
each value as the ORM's compiler would (``from_db_value``: JSON text to dicts and lists, encrypted
credentials to plain) and builds the instance with ``Model.from_db``, so what callers get is what the
equivalent queryset returns."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection, models


def columns(model: type[models.Model], alias: str) -> str:
    """``alias.col, …`` of every concrete column of ``model``, in ``_meta.concrete_fields`` order."""
    return ", ".join(f"{alias}.{f.column}" for f in model._meta.concrete_fields)


def model_from_row[M: models.Model](model: type[M], values: Sequence[Any]) -> M:
    """An instance of ``model`` from its concrete fields' values (a slice of a row), converted."""
    fields = model._meta.concrete_fields
    converted = [
        f.from_db_value(v, None, connection) if v is not None and hasattr(f, "from_db_value") else v
        for f, v in zip(fields, values, strict=True)
    ]
    return model.from_db(connection.alias, [f.attname for f in fields], converted)


def width(model: type[models.Model]) -> int:
    """How many values of a row belong to ``model`` (its concrete fields)."""
    return len(model._meta.concrete_fields)
