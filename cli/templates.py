"""--format as Docker's Go templates take it, for what scripts use: text with
`{{.Field}}`, `{{.A.B}}`, `{{.}}`, `{{json .}}` / `{{json .Field}}`,
`{{upper ...}}`, `{{lower ...}}`, `{{range .X}}...{{else}}...{{end}}` (over
a list's items or a map's values in key order, as Go's), `{{if .X}}...
{{else}}...{{end}}`, and a leading `table` for a header row and aligned
columns.

Fields are found without regard to case or underscores (`{{.Names}}`,
`{{.exit_code}}` and `{{.ExitCode}}` all work); a missing one is an error
naming it, as Go's templates do. `\\t` and `\\n` in the template are a tab
and a newline, as in Docker's CLI.
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

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


def _value(expression: str, data, template: str):
    """What a pipeline gives: a field of `data` (the dot), through any functions before it."""
    words = expression.split()
    if not words or not words[-1].startswith("."):
        raise CliError(f"template {template!r}: cannot evaluate {{{{{expression}}}}}")
    value = _field(data, words[-1], template)
    for function in reversed(words[:-1]):
        if function not in FUNCTIONS:
            raise CliError(f"template {template!r}: function {function!r} not defined")
        value = FUNCTIONS[function](value)
    return value


def _truthy(value) -> bool:
    """Go's rule for if and range: false, 0, "", nil and empty collections are false."""
    return bool(value)


@dataclass
class _Block:
    """`range` or `if` with its body and its else body; the root is a block without a kind."""
    kind: str = ""
    expression: str = ""
    body: list = field(default_factory=list)
    otherwise: list = field(default_factory=list)
    in_else: bool = False

    def add(self, node) -> None:
        (self.otherwise if self.in_else else self.body).append(node)


def _parse(body: str, template: str) -> list:
    """Text (str), actions (("action", expression)) and blocks, nested."""
    root = _Block()
    stack = [root]
    position = 0
    for match in _ACTION.finditer(body):
        if match.start() > position:
            stack[-1].add(body[position:match.start()])
        position = match.end()
        expression = match.group(1)
        word = expression.split(maxsplit=1)[0] if expression.split() else ""
        if word in ("range", "if"):
            block = _Block(word, expression[len(word):].strip())
            stack[-1].add(block)
            stack.append(block)
        elif word == "else":
            if len(stack) == 1 or stack[-1].in_else:
                raise CliError(f"template {template!r}: unexpected {{{{else}}}}")
            stack[-1].in_else = True
        elif word == "end":
            if len(stack) == 1:
                raise CliError(f"template {template!r}: unexpected {{{{end}}}}")
            stack.pop()
        else:
            stack[-1].add(("action", expression))
    if position < len(body):
        stack[-1].add(body[position:])
    if len(stack) > 1:
        raise CliError(f"template {template!r}: unexpected EOF: {{{{{stack[-1].kind}}}}} without {{{{end}}}}")
    return root.body


def _execute(nodes: list, data, template: str) -> str:
    out = []
    for node in nodes:
        if isinstance(node, str):
            out.append(node)
        elif isinstance(node, tuple):
            out.append(_text(_value(node[1], data, template)))
        elif node.kind == "if":
            chosen = node.body if _truthy(_value(node.expression, data, template)) else node.otherwise
            out.append(_execute(chosen, data, template))
        else:
            items = _value(node.expression, data, template)
            if isinstance(items, Mapping):
                items = [items[k] for k in sorted(items)]
            elif items is not None and not isinstance(items, list):
                raise CliError(f"template {template!r}: range can't iterate over {_text(items)}")
            if items:
                out.extend(_execute(node.body, item, template) for item in items)
            else:
                out.append(_execute(node.otherwise, data, template))
    return "".join(out)


def render(template: str, data) -> str:
    """One line of output: `template` (without a `table` prefix) applied to `data`."""
    body = template.replace("\\t", "\t").replace("\\n", "\n")
    return _execute(_parse(body, template), data, template)


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
