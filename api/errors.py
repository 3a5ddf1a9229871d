"""Error responses: every 4xx body has one of the two documented problem shapes.

`Problem` (`{"detail": "reason"}`) for every refusal, `ValidationProblems` (`{"detail": [{"path", "message"}]}`) for
every 422, whether FastAPI's request validation or a router (camera configs) raised it. Without these handlers FastAPI
answers a validation error with its own `{type, loc, msg}` list and a body that is not UTF-8 with 400, neither of which
the OpenAPI document declares; `install` also rewrites the document's default 422 schema to `ValidationProblems`.

Starlette answers a method a path does not serve with the `Allow` of the first route whose path matches, although
several routes (one per method) share most paths; the 405 handler lists every method of every route of that path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from api.schemas import FieldProblem, Problem, ValidationProblems

#: FastAPI's 400 for a body it could not read as JSON (not UTF-8): a validation error like any malformed JSON.
_UNPARSABLE_BODY = "There was an error parsing the body"
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
_DEFAULT_422_REF = "#/components/schemas/HTTPValidationError"


def install(app: FastAPI) -> None:
    """Register the handlers on `app` and make its OpenAPI document declare what they return."""
    app.add_exception_handler(RequestValidationError, _validation_problem)
    app.add_exception_handler(StarletteHTTPException, _http_problem)
    plain_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _declare_problems(plain_openapi())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to customise the schema


def field_problems(errors: Sequence[Any]) -> list[FieldProblem]:
    """FastAPI/pydantic error dicts as `{path, message}`: `query.since`, `body.url`, `path.camera_id`."""
    out = []
    for error in errors:
        loc = tuple(error.get("loc", ()))
        message = str(error.get("msg", "invalid"))
        if error.get("type") == "json_invalid":  # loc is ("body", character position)
            reason = (error.get("ctx") or {}).get("error", "")
            message, loc = f"{message} at character {loc[-1]}: {reason}", loc[:1]
        out.append(FieldProblem(path=".".join(str(part) for part in loc), message=message))
    return out


def _problems_response(problems: list[FieldProblem]) -> JSONResponse:
    body = ValidationProblems(detail=problems).model_dump(mode="json")
    return JSONResponse(body, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


async def _validation_problem(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return _problems_response(field_problems(exc.errors()))


async def _http_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == status.HTTP_400_BAD_REQUEST and exc.detail == _UNPARSABLE_BODY:
        return _problems_response([FieldProblem(path="body", message="the body is not UTF-8 JSON")])
    if exc.status_code == status.HTTP_405_METHOD_NOT_ALLOWED:
        headers = {**(exc.headers or {}), "Allow": ", ".join(_allowed_methods(request))}
        exc = StarletteHTTPException(exc.status_code, exc.detail, headers)
    return await http_exception_handler(request, exc)


def _allowed_methods(request: Request) -> list[str]:
    """Every method that some route of the app serves on this request's path (asked of each route, since included
    routers are routes themselves and expose no method list)."""
    return [
        method
        for method in _METHODS
        if any(route.matches({**request.scope, "method": method})[0] == Match.FULL for route in request.app.routes)
    ]


def _declare_problems(schema: dict[str, Any]) -> dict[str, Any]:
    """Point every default 422 response at `ValidationProblems` and drop FastAPI's unused error schemas."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    models = ValidationProblems.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(models.pop("$defs", {}))
    components["ValidationProblems"] = models
    replaced = _replace_refs(schema, _DEFAULT_422_REF, "#/components/schemas/ValidationProblems")
    assert isinstance(replaced, dict)
    components = replaced["components"]["schemas"]
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    components.setdefault("Problem", Problem.model_json_schema())
    _declare_too_large(replaced)
    return replaced


def _declare_too_large(schema: dict[str, Any]) -> None:
    """Every operation with a request body may answer 413 (`api.limits`): say so, with the `Problem` body."""
    too_large = {
        "description": "Request body too large (JSON bodies: 1 MiB; detect uploads: their own limit)",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            if isinstance(operation, dict) and "requestBody" in operation:
                operation.setdefault("responses", {}).setdefault("413", too_large)


def _replace_refs(node: Any, old: str, new: str) -> Any:
    if isinstance(node, dict):
        return {k: (new if k == "$ref" and v == old else _replace_refs(v, old, new)) for k, v in node.items()}
    if isinstance(node, list):
        return [_replace_refs(v, old, new) for v in node]
    return node
