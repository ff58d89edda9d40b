"""The API's JSON parser: a body PostgreSQL or Python cannot take is a 400 that names the value.

DRF's own parser already answers malformed JSON, ``NaN``/``Infinity`` and integers of more than 4,300
digits with 400; this one adds what reaches the database or the interpreter and fails there: NUL
characters and unpaired surrogates in any string or key, integers outside 64 bits, numbers like ``1e400``
that parse to infinity, and nesting deeper than ``engagement.sanitize.MAX_JSON_DEPTH`` (which would
otherwise overflow the parser's stack). Form and multipart bodies are checked by
``engagement.middleware.InputBoundaryMiddleware``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError

from engagement.sanitize import json_problem


class JSONParser(parsers.JSONParser):
    def parse(
        self, stream: IO[Any], media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError("JSON parse error - the document is nested too deeply") from exc
        found = json_problem(data)
        if found:
            path, problem = found
            raise ParseError(f"{path or 'the body'} {problem}")
        return data
