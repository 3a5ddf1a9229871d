"""Cross-references inside one camera config: zone names are unique, and every zone a rule names exists.

`reference_problems` is the one check; the camera model's validator runs it on a validated config, and
`raw_reference_problems` runs it on the raw YAML data when field validation failed (pydantic does not run model
validators then), so `safewatch config validate` and the cameras API report a broken polygon and an unknown zone
reference of the same file in one pass, with the same messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pipelines.config.rules import RULE_TYPES
from pipelines.config.yaml_io import ConfigProblem, Loc, line_of


def reference_problems(
    zone_names: Sequence[str], rules: Sequence[tuple[str, Sequence[str]]]
) -> list[tuple[Loc, str, str]]:
    """Duplicate zone names and rule zone names that name no zone, as (location, message, offending value).

    `rules` holds each rule's (type, zone names) in order. One function for the model validator and for the raw
    pass that `load_camera_config` runs when field validation failed (the model validator does not run then).
    """
    problems: list[tuple[Loc, str, str]] = []
    seen: dict[str, int] = {}
    for i, name in enumerate(zone_names):
        if name in seen:
            problems.append((("zones", i, "name"), f"duplicate zone name '{name}' (also zones.{seen[name]})", name))
        seen.setdefault(name, i)
    known = ", ".join(seen) or "none (this camera defines no zones)"
    for i, (rule_type, names) in enumerate(rules):
        for j, name in enumerate(names):
            if name not in seen:
                message = f"rule {rule_type} names zone '{name}', which does not exist; zones: {known}"
                problems.append((("rules", i, "zones", j), message, name))
    return problems


def raw_reference_problems(
    file: str, data: dict[str, Any], node: Any, reported: list[ConfigProblem]
) -> list[ConfigProblem]:
    """The cross-reference problems of a file whose field validation failed, read from the raw YAML data.

    So one pass reports a broken polygon and an unknown zone reference together. Nothing is said when the zone names
    cannot all be read (a zone without a string name: its field problem is already reported), nor at or under a
    location that already has a problem (a rule of unknown type, a malformed `zones` list).
    """
    zones, rules = data.get("zones", []), data.get("rules", [])
    if not isinstance(zones, list) or not isinstance(rules, list):
        return []
    names = [zone["name"] for zone in zones if isinstance(zone, dict) and isinstance(zone.get("name"), str)]
    if len(names) != len(zones):
        return []
    references = [
        (rule["type"], rule.get("zones", []))
        if isinstance(rule, dict) and rule.get("type") in RULE_TYPES and _strings(rule.get("zones", []))
        else ("", [])
        for rule in rules
    ]
    taken = [p.path for p in reported]
    out = []
    for loc, message, _value in reference_problems(names, references):
        path = ".".join(str(part) for part in loc)
        if not any(path == t or path.startswith(t + ".") or t.startswith(path + ".") for t in taken):
            out.append(ConfigProblem(file, path, message, line_of(node, loc)))
    return out


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)
