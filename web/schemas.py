"""Request bodies: parsed strictly, every mistake reported with what to fix."""

import json
import re
import unicodedata
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError

from web.errors import ApiError

_ALLOWED_CONTROLS = {"\t", "\n", "\r"}


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: StrictStr
    wait_ms: StrictInt = Field(0, ge=0)
    detail: Literal["quick", "detailed"] = "quick"
    tenant: StrictStr | None = Field(None, description="Tenant whose answers to use; tenants never share answers.")


class FeedbackRequest(BaseModel):
    """What an asker says of an answer for their question (POST /v1/feedback)."""

    model_config = ConfigDict(extra="forbid")

    question: StrictStr = Field(description="the question as the asker asked it")
    answer_id: StrictInt | None = Field(
        description="the answer shown (the instant answer or a picked suggestion); null: none of those shown fits")
    helpful: StrictBool = Field(description="true: this answer answers the question; false: it does not")
    tenant: StrictStr | None = Field(None, description="the tenant the question was asked in")


class FaqItem(BaseModel):
    question: StrictStr
    answer: StrictStr | None = None
    reference: StrictStr | None = None


class FaqImportRequest(BaseModel):
    """Admin: FAQ entries to import (all or none)."""

    entries: list[FaqItem]
    tenant: StrictStr | None = None


class DocumentItem(BaseModel):
    name: StrictStr  # as `precache docs import` names files: a path relative to the folder imported
    text: StrictStr  # Markdown or plain text


class DocumentsImportRequest(BaseModel):
    """Admin: documents to import; a changed one replaces its passages, `prune` removes those not sent."""

    documents: list[DocumentItem]
    prune: bool = False
    tenant: StrictStr | None = None


class TenantRequest(BaseModel):
    """Admin: the tenant to work in (none: the default namespace)."""

    tenant: StrictStr | None = None


class PinRequest(BaseModel):
    pinned: bool = True


class ReplaceRequest(BaseModel):
    answer: StrictStr


TENANT_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def check_tenant(tenant: str | None) -> str:
    """Return a valid tenant name ("" for none), or raise ApiError saying what a tenant may look like."""
    if tenant is None or tenant == "":
        return ""
    if not TENANT_PATTERN.fullmatch(tenant):
        raise ApiError(400, "invalid_field", "tenant: use 1-64 letters, digits, '.', '_' or '-', "
                       "starting with a letter or digit")
    return tenant


def read_json_object(request) -> dict:
    """Return the request body as a JSON object, or raise ApiError (415 or 400)."""
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type", "send a JSON body with Content-Type: application/json")
    try:
        body = json.loads(request.get_data(cache=False))
    except ValueError as exc:  # also invalid UTF-8
        raise ApiError(400, "invalid_json", f"body is not valid JSON: {exc}") from None
    except RecursionError:  # e.g. [[[[...]]]] thousands deep: the decoder gives up, the client is wrong
        raise ApiError(400, "invalid_json", "body is nested too deeply; send a flat JSON object") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", "body must be a JSON object such as {\"question\": \"...\"}")
    return body


def validated(model: type[BaseModel], request) -> BaseModel:
    """Return the JSON body validated by a model, or raise ApiError naming the first bad field."""
    try:
        return model.model_validate(read_json_object(request))
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "body"
        raise ApiError(400, "invalid_field", f"{field}: {err['msg']}") from None


def parse_ask(request, settings) -> AskRequest:
    """Validate an ask body against the schema and the configured limits."""
    ask = validated(AskRequest, request)
    check_limits(ask.question, ask.wait_ms, settings)
    ask.tenant = check_tenant(ask.tenant)
    return ask


def check_limits(question: str, wait_ms: int, settings) -> None:
    """Check an ask's question and wait against the configured limits (the API and `precache ask`)."""
    check_question(question, settings.max_question_chars)
    if wait_ms < 0:
        raise ApiError(400, "invalid_field", "wait_ms: must be 0 or more")
    if wait_ms > settings.max_wait_ms:
        raise ApiError(400, "invalid_field", f"wait_ms: must be at most {settings.max_wait_ms}")


def check_question(question: str, limit: int) -> None:
    if not question.strip():
        raise ApiError(400, "invalid_field", "question: must not be empty or only whitespace")
    if len(question) > limit:
        raise ApiError(400, "question_too_long", f"question: is {len(question)} characters; the limit is {limit}")
    check_plain_text("question", question)


def check_plain_text(field: str, text: str) -> None:
    """Refuse control characters (tab and line breaks aside) and lone surrogates in a text field."""
    if any(unicodedata.category(ch) in ("Cc", "Cs") and ch not in _ALLOWED_CONTROLS for ch in text):
        raise ApiError(400, "invalid_field", f"{field}: contains control characters; send plain text", param=field)


def check_window(question: str, tier) -> None:
    """Refuse a question longer than the semantic tier's embedder reads (`tier`: precache.semantic.tier)."""
    # The embedder cuts a question off where the model reads on: text past the cut would be answered but
    # not matched, so one asker's padded question could carry its answer to another question's askers.
    over = tier.overflow(question)
    if over is not None:
        tokens, window = over
        raise ApiError(400, "question_too_long", f"question: is {tokens} tokens long; questions are matched on "
                       f"at most {window}: ask one question, shorter")
