"""Reading config YAML with line numbers, and turning every failure into `ConfigProblem`s (file, field path, message).

The YAML dialect is PyYAML's safe loader minus YAML 1.1 sexagesimal integers, so an unquoted `19:30` stays the
string "19:30" instead of becoming 1170. Duplicate mapping keys are errors (PyYAML would silently keep the last).
Anchors and aliases (`&a`, `*a`) are refused as the document is composed: a config has no use for them, and nine
nested levels of nine aliases ("billion laughs") fit in a few hundred bytes yet expand to 9^9 nodes for every walk
over the document (the duplicate-key check, validation).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from pipelines.config.rules import RULE_TYPES
from vision.redact import redact_url

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with one config file. `path` is the dotted field path (`rules.0.zones.0`), "" for the file."""

    file: str
    path: str
    message: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        text = f"{self.file}: {self.path}: {self.message}" if self.path else f"{self.file}: {self.message}"
        if self.line is not None:
            text += f" (line {self.line}" + (f", column {self.column})" if self.column is not None else ")")
        return text


class ConfigError(Exception):
    """Invalid configuration; `problems` lists every problem found (credentials already redacted)."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = [ConfigProblem(p.file, p.path, redact_url(p.message), p.line, p.column) for p in problems]
        super().__init__("\n".join(str(p) for p in self.problems))


class _AnchorFound(Exception):
    """The document uses an anchor or an alias (see the module docs); `line` and `column` (1-based) say where."""

    def __init__(self, text: str, event: Any) -> None:
        super().__init__(text)
        self.text = text
        self.line, self.column = event.start_mark.line + 1, event.start_mark.column + 1


class _Loader(yaml.SafeLoader):
    """Safe loader without YAML 1.1 base-60 integers (`19:30` → 1170), refusing anchors and aliases."""

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event: Any = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent):
            raise _AnchorFound(f"alias '*{event.anchor}'", event)
        if getattr(event, "anchor", None) is not None:
            raise _AnchorFound(f"anchor '&{event.anchor}'", event)
        return super().compose_node(parent, index)


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:int"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"),
)


def read_yaml(path: Path) -> tuple[dict[str, Any], yaml.Node]:
    """Parse one config file into a mapping plus its node tree (for line numbers). Raises ConfigError."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError([ConfigProblem(file, "", f"not UTF-8 text ({exc.reason} at byte {exc.start})")]) from None
    except OSError as exc:
        raise ConfigError([ConfigProblem(file, "", f"cannot read: {exc.strerror or exc}")]) from None
    try:
        loader = _Loader(text)
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow anywhere (NUL, most C0 controls)
        at_line = text.count("\n", 0, exc.position) + 1
        message = f"not YAML text: character U+{exc.character:04X} is not allowed"
        raise ConfigError([ConfigProblem(file, "", message, at_line)]) from None
    try:
        node = loader.get_single_node()
        if node is None:
            raise ConfigError([ConfigProblem(file, "", "empty file; expected a camera config mapping")])
        duplicates = list(_duplicate_keys(file, node, ()))
        if duplicates:
            raise ConfigError(duplicates)
        data = loader.construct_document(node)
    except _AnchorFound as exc:
        message = f"YAML {exc.text}: anchors (&) and aliases (*) are not allowed in camera configs; write values out"
        raise ConfigError([ConfigProblem(file, "", message, exc.line, exc.column)]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        context = exc.context or ""
        if context and exc.context_mark is not None:
            context += f" started at line {exc.context_mark.line + 1}"
        message = f"YAML syntax error: {exc.problem}" + (f" ({context})" if context else "")
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
        raise ConfigError([ConfigProblem(file, "", message, line, column)]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([ConfigProblem(file, "", f"YAML error: {exc}")]) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"a {type(data).__name__}"
        raise ConfigError([ConfigProblem(file, "", f"expected a mapping of config fields, got {kind}", 1)])
    return data, node


def _duplicate_keys(file: str, node: yaml.Node, loc: Loc) -> Any:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            name = str(key.value)
            if name in seen:
                path = ".".join(str(p) for p in (*loc, name))
                yield ConfigProblem(file, path, "duplicate key", key.start_mark.line + 1)
            seen.add(name)
            yield from _duplicate_keys(file, value, (*loc, name))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _duplicate_keys(file, item, (*loc, i))


def line_of(node: yaml.Node | None, loc: Loc) -> int | None:
    """1-based line of the deepest YAML node along `loc` (a mapping key's line for mapping entries)."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            entry = next(((k, v) for k, v in node.value if str(k.value) == str(part)), None)
            if entry is None:
                break
            line, node = entry[0].start_mark.line + 1, entry[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def field_loc(loc: Loc) -> Loc:
    """Drop the discriminator tags pydantic puts in union locations (`rules.0.exit_blocked.x` → `rules.0.x`)."""
    out: list[str | int] = []
    for i, part in enumerate(loc):
        if i >= 2 and loc[i - 2] == "rules" and isinstance(loc[i - 1], int) and part in RULE_TYPES:
            continue
        out.append(part)
    return tuple(out)


def problems_from_validation(
    file: str, exc: ValidationError, node: yaml.Node | None, root: type[BaseModel]
) -> list[ConfigProblem]:
    """One ConfigProblem per pydantic error, with a dotted field path, a readable message and the YAML line."""
    problems = []
    for err in exc.errors(include_url=False):
        loc = field_loc(tuple(err["loc"]))
        message = _message(err, loc, err["loc"], root)
        problems.append(ConfigProblem(file, ".".join(str(p) for p in loc), message, line_of(node, loc)))
    return problems


def _message(err: ErrorDetails, loc: Loc, raw_loc: Loc, root: type[BaseModel]) -> str:
    kind, ctx = err["type"], err.get("ctx", {})
    if kind == "extra_forbidden":
        allowed = _fields_at(raw_loc[:-1], root)
        return f"unknown field '{loc[-1]}'" + (f"; allowed: {', '.join(allowed)}" if allowed else "")
    if kind == "union_tag_invalid":
        return f"unknown rule type {ctx.get('tag')!r}; expected one of: {', '.join(RULE_TYPES)}"
    if kind == "union_tag_not_found":
        return f"missing 'type'; expected one of: {', '.join(RULE_TYPES)}"
    if kind == "missing":
        return "required field is missing"
    msg = err["msg"].removeprefix("Value error, ")
    if kind == "string_pattern_mismatch":
        msg += f" (got {err['input']!r})"
    return msg


def _fields_at(loc: Loc, root: type[BaseModel]) -> list[str]:
    """Field names of the model at `loc` (following lists and discriminated unions), [] if not resolvable."""
    candidates: list[type[BaseModel]] = [root]
    for part in loc:
        if isinstance(part, int):
            continue
        tagged = [c for c in candidates if _tag(c) == part]
        if len(candidates) > 1 and tagged:
            candidates = tagged
            continue
        if len(candidates) != 1 or part not in candidates[0].model_fields:
            return []
        candidates = list(_models_in(candidates[0].model_fields[part].annotation))
    return list(candidates[0].model_fields) if len(candidates) == 1 else []


def _tag(model: type[BaseModel]) -> object:
    field = model.model_fields.get("type")
    args = getattr(field.annotation, "__args__", ()) if field is not None else ()
    return args[0] if args else None


def _models_in(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    for arg in getattr(annotation, "__args__", ()) or ():
        yield from _models_in(arg)
