"""The body of POST /v1/chat/completions (OpenAI's wire format), checked for what the cache can serve.

Unknown fields are ignored, as OpenAI clients expect. What the cache cannot answer faithfully is a
400 naming the field: tools and function calls, n > 1, a response_format other than text, image,
audio or file content, audio output. The result is the conversation as plain {role, content} turns.
"""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError

from web.errors import ApiError
from web.responses import GROUNDED, SOURCES, SourceView
from web.schemas import check_plain_text, check_question, read_json_object

ROLES = Literal["system", "developer", "user", "assistant", "tool", "function"]


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: ROLES
    content: StrictStr | list[dict[str, Any]] | None = None
    tool_calls: list | None = None
    function_call: dict | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: StrictBool = False


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: StrictStr = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    max_tokens: StrictInt | None = Field(None, ge=1)
    max_completion_tokens: StrictInt | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    user: StrictStr | None = None
    n: StrictInt | None = Field(None, ge=1)
    tools: list | None = None
    functions: list | None = None
    tool_choice: Any = None
    function_call: Any = None
    response_format: dict | None = None
    modalities: list[StrictStr] | None = None
    audio: dict | None = None


def parse_chat(request, settings) -> tuple[ChatRequest, list[dict]]:
    """Return the request and its conversation as [{"role", "content": str}], or raise ApiError (400)."""
    try:
        chat = ChatRequest.model_validate(read_json_object(request))
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "body"
        raise ApiError(400, "invalid_field", f"{field}: {err['msg']}", param=field) from None
    _check_servable(chat)
    turns = [{"role": "system" if m.role == "developer" else m.role, "content": _text(m, i)}
             for i, m in enumerate(chat.messages)]
    if turns[-1]["role"] != "user":
        raise _unservable(f"messages.{len(turns) - 1}.role", "the last message must be the user's question "
                          f"(it is {turns[-1]['role']!r})")
    _check_question(turns, settings.max_question_chars)
    return chat, turns


def _check_question(turns: list[dict], limit: int) -> None:
    """Check the last message as POST /v1/ask checks a question, naming the message at fault; refuse control
    characters in every message (earlier turns are stored with a follow-up and sent to the model too)."""
    for i, turn in enumerate(turns[:-1]):
        check_plain_text(f"messages.{i}.content", turn["content"])
    try:
        check_question(turns[-1]["content"], limit)
    except ApiError as exc:
        raise ApiError(400, exc.code, exc.message.replace("question:", f"messages.{len(turns) - 1}.content:", 1),
                       param=f"messages.{len(turns) - 1}.content") from None


def _check_servable(chat: ChatRequest) -> None:
    if chat.n is not None and chat.n > 1:
        raise _unservable("n", f"the cache gives one answer per question; send n=1 or leave it out (got {chat.n})")
    for name in ("tools", "functions"):
        if getattr(chat, name):
            raise _unservable(name, "tool and function calls cannot be answered from the cache; leave it out")
    for name in ("tool_choice", "function_call"):
        if getattr(chat, name) not in (None, "none"):
            raise _unservable(name, "tool and function calls cannot be answered from the cache; leave it out")
    kind = (chat.response_format or {}).get("type", "text")
    if kind != "text":
        raise _unservable("response_format", f"answers are plain text; {kind!r} cannot be guaranteed from the "
                          "cache: send {\"type\": \"text\"} or leave it out")
    if chat.audio is not None or any(m != "text" for m in chat.modalities or []):
        raise _unservable("modalities", "answers are text only; ask for [\"text\"] or leave it out")


def _text(message: ChatMessage, i: int) -> str:
    """Return a message's text; content parts other than text are refused."""
    if message.role in ("tool", "function") or message.tool_calls or message.function_call:
        raise _unservable(f"messages.{i}", "tool and function call turns cannot be answered from the cache")
    if message.content is None:
        raise _unservable(f"messages.{i}.content", "must be text (a string or text parts)")
    if isinstance(message.content, str):
        return message.content
    return "\n".join(_part_text(part, f"messages.{i}.content.{j}") for j, part in enumerate(message.content))


def _part_text(part: dict, param: str) -> str:
    """A content part's text; any other kind of part is refused."""
    kind = part.get("type")
    if kind != "text" or not isinstance(part.get("text"), str):
        raise _unservable(f"{param}.type", f"{kind!r} content cannot be answered from the cache; send text parts only")
    return part["text"]


def _unservable(param: str, message: str) -> ApiError:
    return ApiError(400, "unsupported_by_cache", f"{param}: {message}", param=param)


# --- responses (the OpenAPI description; web/chat.py builds them as plain dicts) ---------------------

_RESPONSE = ConfigDict(extra="forbid")


class ChatAnswer(BaseModel):
    model_config = _RESPONSE

    role: Literal["assistant"]
    content: str
    refusal: None


class ChatChoice(BaseModel):
    model_config = _RESPONSE

    index: int
    message: ChatAnswer
    logprobs: None
    finish_reason: Literal["stop"]


class Usage(BaseModel):
    """Token counts, estimated at four characters a token (cached answers keep no counts)."""

    model_config = _RESPONSE

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class Grounding(BaseModel):
    """precache's own field of a chat completion (clients ignore it): how the answer was grounded."""

    model_config = _RESPONSE

    grounded: bool = Field(description=GROUNDED)
    sources: list[SourceView] = Field(description=SOURCES)


class ChatCompletion(BaseModel):
    """A chat completion (OpenAI's `chat.completion`); headers x-precache-source, x-precache-question, and
    x-precache-answer-id / x-precache-job-id / x-precache-sources where there is one."""

    model_config = _RESPONSE

    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage
    precache: Grounding


class ModelCard(BaseModel):
    model_config = _RESPONSE

    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(BaseModel):
    """The model chat clients name (any name is accepted)."""

    model_config = _RESPONSE

    object: Literal["list"]
    data: list[ModelCard]
