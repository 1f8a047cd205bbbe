"""Decoding of Stripe's form-encoded parameters.

The SDK sends nested parameters as ``payload[value]=5`` and lists as ``expand[0]=x`` (brackets
left unescaped); this turns them back into nested dicts and lists of strings.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

_PART = re.compile(r"\[([^\[\]]*)\]")


def _split_key(key: str) -> list[str]:
    head, _, rest = key.partition("[")
    if not rest:
        return [key]
    parts = [head]
    tail = "[" + rest
    pos = 0
    for m in _PART.finditer(tail):
        if m.start() != pos:  # malformed: keep the whole key flat
            return [key]
        parts.append(m.group(1))
        pos = m.end()
    if pos != len(tail):
        return [key]
    return parts


def _listify(node: Any) -> Any:
    if isinstance(node, dict):
        node = {k: _listify(v) for k, v in node.items()}
        if node and all(isinstance(k, int) for k in node):
            return [node[k] for k in sorted(node)]
        return {str(k): v for k, v in node.items()}
    return node


def decode(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    root: dict[Any, Any] = {}
    for key, value in pairs:
        parts = _split_key(key)
        node = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if part == "" and i > 0:  # "expand[]" appends
                part = max((k for k in node if isinstance(k, int)), default=-1) + 1
            elif i > 0 and part.isdigit():
                part = int(part)
            if last:
                node[part] = value
            else:
                child = node.get(part)
                if not isinstance(child, dict):
                    child = {}
                    node[part] = child
                node = child
    return _listify(root)


def decode_query(query: str) -> dict[str, Any]:
    return decode(parse_qsl(query, keep_blank_values=True))


def decode_body(body: bytes) -> dict[str, Any]:
    return decode(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
