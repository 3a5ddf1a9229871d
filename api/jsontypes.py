"""The JSON shapes the API stores and sends, named once so no `Any` stands in for them."""

from __future__ import annotations

from typing import Any, TypeAlias

from pydantic import JsonValue

EventJSON: TypeAlias = dict[str, JsonValue]
"""One IncidentEvent as JSON (`IncidentEvent.model_dump(mode="json")`): stored per event, sent over SSE and webhooks."""

FilterLists: TypeAlias = dict[str, list[str]]
"""A webhook subscription's filters as stored: `sites`/`cameras`/`rules` → allowed values (empty or absent = all)."""

Responses: TypeAlias = dict[int | str, dict[str, Any]]
"""FastAPI's type of a route's `responses=` (Any is FastAPI's: the dict is invariant, so ours must match it)."""
