"""Every error the service answers with has one JSON shape:

``{"error": {"code": "unknown_items", "message": "...", "details": {...}}}``

:class:`ApiError` is raised by the services for a caller's mistake (unknown id, empty history,
limit exceeded) with its HTTP status; :func:`install_error_handlers` maps FastAPI's own errors
(validation, malformed JSON, 404/405, unexpected exceptions) onto the same shape, so no bad
input ever produces a bare 500 or an HTML page. :class:`BodySizeLimit` rejects oversized
bodies with 413 before they are read into memory.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from onerec.errors import OnerecError

log = logging.getLogger("onerec.serve")

# Longest list of offending ids echoed back in a message / in details.
MAX_LISTED_IDS = 20

# What FastAPI says when the body is not decodable at all (bad UTF-8, recursion limit).
_FASTAPI_PARSE_ERROR = "There was an error parsing the body"

_STATUS_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
}


class ApiError(OnerecError):
    """A request the service refuses, with the HTTP status and a stable machine code."""

    def __init__(
        self, status: int, code: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """The JSON body of an error answer."""
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return {"error": error}


def error_response(
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """A ``JSONResponse`` with :func:`error_body`."""
    return JSONResponse(error_body(code, message, details), status_code=status, headers=headers)


def listed(ids: Sequence[str]) -> str:
    """``'a', 'b', … (and 12 more)`` for messages that name offending ids."""
    shown = ", ".join(repr(i) for i in ids[:MAX_LISTED_IDS])
    extra = len(ids) - MAX_LISTED_IDS
    return shown + (f" (and {extra} more)" if extra > 0 else "")


def _location(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(parts) or "body"


def _message(err: dict[str, Any]) -> str:
    at_body = tuple(err.get("loc", ())) == ("body",)
    if at_body and err.get("type") in ("model_attributes_type", "dict_type"):
        return "the request body must be a JSON object"
    if at_body and err.get("type") == "missing":
        return "the request body is empty; send a JSON object"
    message = str(err.get("msg", ""))
    return message.removeprefix("Value error, ")


def _validation_response(exc: RequestValidationError) -> JSONResponse:
    errors = list(exc.errors())
    for err in errors:
        if err.get("type") == "json_invalid":
            ctx = err.get("ctx") or {}
            where = err.get("loc", ("body", "?"))[-1]
            reason = ctx.get("error", "JSON decode error")
            return error_response(
                400,
                "malformed_json",
                f"request body is not valid JSON: {reason} at character {where}",
            )
    details = [
        {"field": _location(err.get("loc", ())), "message": _message(err), "type": err.get("type")}
        for err in errors
    ]
    summary = "; ".join(f"{d['field']}: {d['message']}" for d in details[:5])
    if len(details) > 5:
        summary += f"; (and {len(details) - 5} more)"
    return error_response(422, "invalid_request", f"invalid request: {summary}", details)


def install_error_handlers(app: FastAPI) -> None:
    """Route every error class onto the ``{"error": {...}}`` shape."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.details)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _validation_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "http_error")
        message = str(exc.detail) if exc.detail else code.replace("_", " ")
        if exc.status_code == 400 and message == _FASTAPI_PARSE_ERROR:
            code = "malformed_json"
            message = "request body could not be parsed as JSON (not UTF-8, or nested too deeply)"
        elif exc.status_code == 404 and message == "Not Found":
            message = f"no such endpoint: {request.method} {request.url.path} (see /docs)"
        elif exc.status_code == 405:
            message = f"method {request.method} is not allowed on {request.url.path}"
        return error_response(exc.status_code, code, message, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(
            500, "internal_error", f"internal error ({type(exc).__name__}); see the server log"
        )


class BodySizeLimit:
    """ASGI middleware: bodies over ``max_bytes`` get 413 without being buffered.

    A declared ``Content-Length`` above the limit is refused before reading; a chunked body is
    counted as it streams and refused (through the app's HTTP error handler) once it passes
    the limit.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                await self._reject(send, 400, "bad_request", "Content-Length is not a number")
                return
            if size > self.max_bytes:
                await self._reject(send, 413, "payload_too_large", self._too_large(size))
                return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise StarletteHTTPException(413, self._too_large(None))
            return message

        await self.app(scope, counting_receive, send)

    def _too_large(self, size: int | None) -> str:
        got = f" ({size} bytes)" if size is not None else ""
        return f"request body too large{got}; the limit is {self.max_bytes} bytes"

    @staticmethod
    async def _reject(send: Send, status: int, code: str, message: str) -> None:
        body = json.dumps(error_body(code, message)).encode("utf-8")
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
