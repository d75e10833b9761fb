"""--format as Docker's Go templates take it, for what scripts use: text with
`{{.Field}}`, `{{.A.B}}`, `{{json .}}` / `{{json .Field}}`, `{{upper ...}}`,
`{{lower ...}}`, and a leading `table` for a header row and aligned columns.

Fields are found without regard to case or underscores (`{{.Names}}`,
`{{.exit_code}}` and `{{.ExitCode}}` all work); a missing one is an error
naming it, as Go's templates do. `\\t` and `\\n` in the template are a tab
and a newline, as in Docker's CLI.
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping

from cli.options import CliError

_ACTION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}")
FUNCTIONS = {"json": lambda v: json.dumps(v), "upper": lambda v: _text(v).upper(),
             "lower": lambda v: _text(v).lower()}


def _key(name: str) -> str:
    return name.replace("_", "").replace("-", "").lower()


def _field(value, path: str, template: str):
    for part in [p for p in path.split(".") if p]:
        if not isinstance(value, Mapping):
            raise CliError(f"template {template!r}: can't evaluate field {part} in a {type(value).__name__}")
        matches = [k for k in value if _key(k) == _key(part)]
        if not matches:
            raise CliError(f"template {template!r}: there is no field {part!r}")
        value = value[matches[0]]
    return value


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _evaluate(expression: str, data, template: str) -> str:
    words = expression.split()
    if not words or not words[-1].startswith("."):
        raise CliError(f"template {template!r}: cannot evaluate {{{{{expression}}}}}")
    value = _field(data, words[-1], template)
    for function in reversed(words[:-1]):
        if function not in FUNCTIONS:
            raise CliError(f"template {template!r}: function {function!r} not defined")
        value = FUNCTIONS[function](value)
        value = value if isinstance(value, str) else _text(value)
    return _text(value)


def render(template: str, data) -> str:
    """One line of output: `template` (without a `table` prefix) applied to `data`."""
    body = template.replace("\\t", "\t").replace("\\n", "\n")
    return _ACTION.sub(lambda m: _evaluate(m.group(1), data, template), body)


def render_all(template: str, items: list) -> str:
    """Every item, one line each; `table TEMPLATE` adds a header and aligns the columns."""
    if not template.startswith("table"):
        return "\n".join(render(template, item) for item in items)
    body = template[len("table"):].strip()
    header = _ACTION.sub(lambda m: _header(m.group(1)), body.replace("\\t", "\t").replace("\\n", "\n"))
    rows = [header.split("\t")] + [render(body, item).split("\t") for item in items]
    widths = [max(len(r[i]) for r in rows if i < len(r)) for i in range(max(len(r) for r in rows))]
    return "\n".join("   ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows)


def _header(expression: str) -> str:
    """A column's title from its field: {{.RunningFor}} -> RUNNING FOR."""
    name = expression.split()[-1].lstrip(".").split(".")[-1]
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name).replace("_", " ").upper()
