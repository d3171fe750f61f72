"""Every answer a service gives, in its OpenAPI document (issue 17: the fuzz tier found 401, 403, 404, 409 and
CSV answers the documents did not declare, and 422 bodies unlike FastAPI's default schema).

The routes stay free of boilerplate: the runtime completes the generated document once, by rule —
401 and 403 on every operation (a missing, expired or no-longer-standing token; a role without the
permission), 404 on every operation (the id in the path, or a client or service a filter names, is not the
caller's), 409 on every change (a conflict with what is stored),
413 where a body is sent (shared/http_text.py caps it), 429 on the sign-in exchange, ``text/csv`` beside
JSON where an operation takes ``format``, and one 422 shape for what FastAPI and the services both answer:
``detail`` as a sentence or as a list of ``{loc, msg}`` problems.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

PROBLEM = {
    "title": "Problem",
    "type": "object",
    "required": ["detail"],
    "properties": {"detail": {"type": "string", "description": "What is wrong, in words"}},
}
VALIDATION_PROBLEM = {
    "title": "ValidationProblem",
    "type": "object",
    "required": ["detail"],
    "properties": {
        "detail": {
            "description": "A sentence, or one entry per field that is wrong",
            "anyOf": [
                {"type": "string"},
                {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["msg"],
                        "properties": {
                            "loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
                            "msg": {"type": "string"},
                            "type": {"type": "string"},
                        },
                    },
                },
            ],
        }
    },
}
WHY = {
    "401": "No bearer token, or one that is invalid, expired or no longer stands for its user",
    "403": "The caller's role lacks the permission (or the signed link is not valid)",
    "404": "Nothing of that id, or of a reference a filter names, in the caller's tenant",
    "409": "The change conflicts with what is stored (the reason says what)",
    "413": "The request body (or the batch in it) is over its limit",
    "429": "Too many attempts: retry after the Retry-After header's seconds",
}
WRITES = {"post", "put", "patch", "delete"}


def _answer(why: str, schema: str) -> dict[str, Any]:
    return {"description": why, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}


def complete(doc: dict[str, Any]) -> dict[str, Any]:
    """Add the answers every /v1 operation can give to a generated document (in place, and returned)."""
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"], schemas["ValidationProblem"] = PROBLEM, VALIDATION_PROBLEM
    for path, item in doc.get("paths", {}).items():
        if not path.startswith("/v1/"):
            continue
        for method, op in item.items():
            if method not in WRITES | {"get"}:
                continue
            answers = op.setdefault("responses", {})
            codes = ["401", "403", "404"] + ["409", "413"] * (method in WRITES)
            codes += ["429"] * (path == "/v1/auth/token")
            for code in codes:
                answers.setdefault(code, _answer(WHY[code], "Problem"))
            answers["422"] = _answer(
                "A parameter or the body is not acceptable (each field named)", "ValidationProblem"
            )
            if any(p.get("name") == "format" and p.get("in") == "query" for p in op.get("parameters", [])):
                ok = answers.setdefault("200", {"description": "OK"}).setdefault("content", {})
                ok.setdefault("text/csv", {"schema": {"type": "string"}})
    return doc


def document_every_answer(app: FastAPI) -> None:
    """Make ``app``'s OpenAPI document the completed one (generated once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            generated = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            app.openapi_schema = complete(generated)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
