"""The FastAPI application: ``create_app(model_dir)``.

Endpoints (OpenAPI at ``/docs`` and ``/openapi.json``):

* ``POST /v1/recommend`` — OneRec generator: a session of ``m`` distinct items.
* ``POST /v1/retrieve`` — CRM: top-``k`` items under a condition value or strategy.
* ``GET /v1/items/{item_id}`` — one catalogue item.
* ``GET /healthz`` — model facts and versions.

The bundle is loaded once when the app is created; handlers are plain ``def`` (FastAPI runs them
in its thread pool, so the event loop never blocks on inference). Errors always have the shape
``{"error": {"code", "message", "details"?}}`` (:mod:`onerec.serve.api_errors`).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import Depends, FastAPI, Request

import onerec
from onerec.serve.api_errors import ApiError, BodySizeLimit, install_error_handlers
from onerec.serve.catalog import ItemCatalog
from onerec.serve.config import ServeConfig
from onerec.serve.loader import ServiceBundle, load_bundle
from onerec.serve.retrieval_service import ConditionedRetrieval
from onerec.serve.schemas import (
    ErrorResponse,
    HealthResponse,
    ItemResponse,
    RecommendRequest,
    RecommendResponse,
    RetrieveRequest,
    RetrieveResponse,
    ScoredItem,
    id_text,
)
from onerec.serve.session_service import SessionRecommender

# Environment variables ``app_from_env`` reads (``onerec serve --workers N`` sets them).
ENV_MODEL_DIR = "ONEREC_SERVE_MODEL_DIR"
ENV_CONFIG_JSON = "ONEREC_SERVE_CONFIG"

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse} for status in (400, 404, 413, 415, 422, 501)
}


def require_json(request: Request) -> None:
    """POST bodies must be declared as JSON (415 otherwise)."""
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    if media != "application/json" and not (
        media.startswith("application/") and media.endswith("+json")
    ):
        raise ApiError(
            415,
            "unsupported_media_type",
            f"send the body as JSON with 'Content-Type: application/json' (got {content_type or 'none'!r})",
        )


def create_app(model: str | Path | ServiceBundle, config: ServeConfig | None = None) -> FastAPI:
    """The app serving ``model`` (a bundle directory, or an already loaded bundle)."""
    config = config or ServeConfig()
    bundle = model if isinstance(model, ServiceBundle) else load_bundle(model, config)
    app = FastAPI(
        title="onerec",
        version=onerec.__version__,
        description="OneRec session generation and CRM controllable retrieval over HTTP.",
    )
    app.state.bundle = bundle
    app.state.config = config
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=config.max_body_bytes)
    limits = {
        "max_body_bytes": config.max_body_bytes,
        "max_history_items": config.max_history_items,
        "max_k": config.max_k,
        "max_beam_width": config.max_beam_width,
        "max_session_items": config.max_session_items,
    }

    @app.get("/healthz", response_model=HealthResponse, tags=["service"])
    def healthz() -> dict[str, Any]:
        """Liveness plus model facts (parts, sizes, device) and versions."""
        return {"status": "ok", **bundle.info(), "limits": limits}

    @app.get(
        "/v1/items/{item_id:path}", response_model=ItemResponse, responses=_ERRORS, tags=["items"]
    )
    def get_item(item_id: str) -> ItemResponse:
        """One catalogue item: its index, side columns and semantic ID."""
        idx = bundle.items.index_of(item_id)
        if idx is None:
            raise ApiError(404, "unknown_item", f"unknown item id {item_id!r}")
        codes = None if bundle.semantic_codes is None else bundle.semantic_codes[idx].tolist()
        return ItemResponse(
            item_id=item_id, item_idx=idx, features=bundle.items.describe(idx), semantic_id=codes
        )

    @app.post(
        "/v1/recommend",
        response_model=RecommendResponse,
        responses=_ERRORS,
        dependencies=[Depends(require_json)],
        tags=["models"],
    )
    def recommend(body: RecommendRequest) -> RecommendResponse:
        """A session of ``m`` distinct items for a user or an explicit history (beam search)."""
        started = time.perf_counter()
        generator = _generator(bundle)
        _check_limit("beam_width", body.beam_width, config.max_beam_width)
        m = (
            body.m
            if body.m is not None
            else min(generator.max_session_items, config.max_session_items)
        )
        _check_limit("m", m, config.max_session_items)
        history, user_idx = _resolve_history(bundle, body.user_id, body.history, config)
        exclude = history if body.exclude_history else None
        session = generator.recommend(history, m, body.beam_width, exclude, user_idx)
        return RecommendResponse(
            user_id=None if body.user_id is None else id_text(body.user_id),
            items=_scored(bundle.items, session.items, session.item_scores),
            session_score=session.session_score,
            m=m,
            beam_width=body.beam_width,
            history_length=session.history_length,
            exclude_history=body.exclude_history,
            latency_ms=_ms_since(started),
        )

    @app.post(
        "/v1/retrieve",
        response_model=RetrieveResponse,
        responses=_ERRORS,
        dependencies=[Depends(require_json)],
        tags=["models"],
    )
    def retrieve(body: RetrieveRequest) -> RetrieveResponse:
        """Top-``k`` items from the CRM for a user (any strategy) or a history (fixed condition)."""
        started = time.perf_counter()
        retrieval = _retrieval(bundle)
        _check_limit("k", body.k, config.max_k)
        strategy = body.resolved_strategy
        if body.user_id is not None:
            user_id = id_text(body.user_id)
            bundle.users.index_of(user_id)  # 404 for an unknown user
            result = retrieval.for_user(
                user_id, body.k, strategy, body.condition, body.tdm_values, body.exclude_seen
            )
        else:
            history, _ = _resolve_history(bundle, None, body.history, config)
            exclude = history if body.exclude_seen else None
            result = retrieval.for_history(history, body.k, strategy, body.condition, exclude)
        return RetrieveResponse(
            user_id=None if body.user_id is None else id_text(body.user_id),
            items=_scored(bundle.items, result.items, result.scores),
            k=body.k,
            strategy=result.strategy,
            condition_position=result.condition_position,
            condition_value=result.condition_value,
            latency_ms=_ms_since(started),
        )

    return app


def apply_process_settings(config: ServeConfig) -> None:
    """Per-process settings of a server process (thread counts); not done by ``create_app``,
    which may run inside another program (tests, notebooks)."""
    if config.torch_threads:
        import faiss
        import torch

        torch.set_num_threads(config.torch_threads)
        faiss.omp_set_num_threads(config.torch_threads)


def app_from_env() -> FastAPI:
    """App factory for ``uvicorn --factory`` (multi-worker serving): reads the environment."""
    model_dir = os.environ.get(ENV_MODEL_DIR)
    if not model_dir:
        raise RuntimeError(f"set {ENV_MODEL_DIR} to the bundle directory")
    raw = os.environ.get(ENV_CONFIG_JSON)
    config = ServeConfig.model_validate_json(raw) if raw else ServeConfig()
    apply_process_settings(config)
    return create_app(model_dir, config)


def _generator(bundle: ServiceBundle) -> SessionRecommender:
    if bundle.generator is None:
        raise ApiError(
            501, "model_not_in_bundle", "this bundle has no generator; /v1/recommend is unavailable"
        )
    return bundle.generator


def _retrieval(bundle: ServiceBundle) -> ConditionedRetrieval:
    if bundle.retrieval is None:
        raise ApiError(
            501, "model_not_in_bundle", "this bundle has no CRM model; /v1/retrieve is unavailable"
        )
    return bundle.retrieval


def _check_limit(name: str, value: int, limit: int) -> None:
    if value > limit:
        raise ApiError(
            422, "limit_exceeded", f"{name}={value} exceeds this server's limit of {limit}"
        )


def _resolve_history(
    bundle: ServiceBundle,
    user_id: str | int | None,
    history: list[str | int] | None,
    config: ServeConfig,
) -> tuple[np.ndarray, int | None]:
    """``(item_idx history oldest first, user_idx or None)`` for a request."""
    if user_id is not None:
        user_idx = bundle.users.index_of(id_text(user_id))
        return bundle.users.history(user_idx), user_idx
    assert history is not None  # the schema guarantees one of the two
    if not history:
        raise ApiError(
            422, "empty_history", "history is empty: send at least one item id, or a user_id"
        )
    if len(history) > config.max_history_items:
        raise ApiError(
            422,
            "history_too_long",
            f"history has {len(history)} items; this server accepts at most "
            f"{config.max_history_items} (the model reads only the most recent ones)",
        )
    return bundle.items.indices(history), None


def _scored(items: ItemCatalog, indices: list[int], scores: list[float]) -> list[ScoredItem]:
    return [
        ScoredItem(item_id=items.item_ids[i], item_idx=i, score=s)
        for i, s in zip(indices, scores, strict=True)
    ]


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000.0, 3)
