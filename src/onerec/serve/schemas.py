"""Request and response models of the HTTP API (they are also its OpenAPI schema at /docs).

Requests forbid unknown fields (a typo is an error, not a silently ignored option). Ids are
the data set's external ``item_id`` / ``user_id`` strings; JSON integers are accepted too and
read as their decimal string. A request names a user by ``user_id`` *or* sends an explicit
``history`` (oldest item first), never both.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints, model_validator

from onerec.serve.config import (
    HARD_MAX_BEAM_WIDTH,
    HARD_MAX_HISTORY,
    HARD_MAX_K,
    HARD_MAX_SESSION_ITEMS,
    HARD_MAX_TDM_VALUES,
)

MAX_ID_CHARS = 256

ExternalId = (
    Annotated[str, StringConstraints(strict=True, min_length=1, max_length=MAX_ID_CHARS)]
    | StrictInt
)


def id_text(value: str | int) -> str:
    """The external id as the string the tables store."""
    return str(value)


class _Request(BaseModel):
    # Strict: JSON true is not m=1, "5" is not k=5, 2.0 is not an integer.
    model_config = ConfigDict(extra="forbid", strict=True)


class _UserOrHistory(_Request):
    user_id: ExternalId | None = Field(
        default=None, description="a user the model was trained with"
    )
    history: list[ExternalId] | None = Field(
        default=None,
        max_length=HARD_MAX_HISTORY,
        description="explicit history of item ids, oldest first (instead of user_id)",
    )

    @model_validator(mode="after")
    def _one_of(self) -> _UserOrHistory:
        if (self.user_id is None) == (self.history is None):
            raise ValueError("send exactly one of 'user_id' and 'history'")
        return self


class RecommendRequest(_UserOrHistory):
    """``POST /v1/recommend``: a session of ``m`` items from the OneRec generator."""

    m: int | None = Field(
        default=None,
        ge=1,
        le=HARD_MAX_SESSION_ITEMS,
        description="items in the session; default: the generator's max_session_items",
    )
    beam_width: int = Field(
        default=20, ge=1, le=HARD_MAX_BEAM_WIDTH, description="beam search width"
    )
    exclude_history: bool = Field(
        default=True, description="never recommend an item of the history"
    )

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={"examples": [{"user_id": "42", "m": 5, "beam_width": 20}]},
    )


Strategy = Literal["fixed", "max", "mean", "tdm", "mix"]


class RetrieveRequest(_UserOrHistory):
    """``POST /v1/retrieve``: top-``k`` items from the CRM under a condition."""

    k: int = Field(default=50, ge=1, le=HARD_MAX_K, description="number of items")
    strategy: Strategy | None = Field(
        default=None,
        description="fixed (needs condition) | max | mean | tdm | mix (known users only); "
        "default: fixed when a condition is given, else mean",
    )
    condition: float | None = Field(
        default=None,
        allow_inf_nan=False,
        description="condition value in raw units (strategy fixed)",
    )
    tdm_values: list[Annotated[float, Field(allow_inf_nan=False)]] | None = Field(
        default=None,
        min_length=1,
        max_length=HARD_MAX_TDM_VALUES,
        description="conditions a tdm user cycles through (default: training quantiles)",
    )
    exclude_seen: bool = Field(
        default=True, description="skip items the user has seen / the history"
    )

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={"examples": [{"user_id": "42", "k": 50, "strategy": "max"}]},
    )

    @property
    def resolved_strategy(self) -> Strategy:
        if self.strategy is not None:
            return self.strategy
        return "fixed" if self.condition is not None else "mean"


class ScoredItem(BaseModel):
    """One recommended or retrieved item."""

    item_id: str
    item_idx: int
    score: float = Field(
        description="recommend: log-probability of the item in its session; "
        "retrieve: scaled dot product"
    )


class RecommendResponse(BaseModel):
    """A generated session, in generation order."""

    user_id: str | None
    items: list[ScoredItem]
    session_score: float = Field(description="summed log-probability of the session")
    m: int
    beam_width: int
    history_length: int = Field(description="history items the encoder read")
    exclude_history: bool
    latency_ms: float


class RetrieveResponse(BaseModel):
    """Top-k items, best first."""

    user_id: str | None
    items: list[ScoredItem]
    k: int
    strategy: str = Field(description="the strategy applied ('none' for an unconditioned model)")
    condition_position: float | None
    condition_value: float | None
    latency_ms: float


class ItemResponse(BaseModel):
    """One catalogue item."""

    item_id: str
    item_idx: int
    features: dict[str, Any]
    semantic_id: list[int] | None = Field(description="the item's code tuple (generator bundles)")


class HealthResponse(BaseModel):
    """Service state, model facts and versions."""

    status: Literal["ok"]
    bundle: dict[str, Any]
    versions: dict[str, str | None]
    device: str
    num_items: int
    num_users: int
    load_seconds: float
    uptime_seconds: float
    generator: dict[str, Any] | None
    retrieval: dict[str, Any] | None
    limits: dict[str, int]


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorResponse(BaseModel):
    """Every 4xx/5xx answer."""

    error: ErrorDetail
