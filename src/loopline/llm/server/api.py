"""The wire types of ``loopline serve llm``: OpenAI's completions, chat completions and
models, field for field where it has them (so its clients work unchanged), plus
``top_k`` (as vLLM has it) and ``/v1/feedback``. Fields OpenAI has and this server
does not (``logprobs``, penalties, tools) are refused by name, not ignored."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

MAX_PROMPT_CHARS = 32_000
MAX_STOPS = 4
MAX_N = 8
ModelId = Annotated[str, Meta(min_length=1, max_length=128)]
Text = Annotated[str, Meta(max_length=MAX_PROMPT_CHARS)]
Temperature = Annotated[float, Meta(ge=0, le=2)]
TopP = Annotated[float, Meta(gt=0, le=1)]
TopK = Annotated[int, Meta(ge=0, le=1000)]
MaxTokens = Annotated[int, Meta(ge=1, le=4096)]
N = Annotated[int, Meta(ge=1, le=MAX_N)]
Stop = Annotated[str, Meta(min_length=1, max_length=64)]
CompletionId = Annotated[str, Meta(pattern=r"^(chat)?cmpl-[0-9a-f]{32}$")]
User = Annotated[str, Meta(max_length=128)]


class StreamOptions(Struct, forbid_unknown_fields=True):
    include_usage: bool = False


class Sampling(Struct, kw_only=True, forbid_unknown_fields=True):
    """What both kinds of request share."""

    model: ModelId
    max_tokens: MaxTokens | None = None
    temperature: Temperature = 1.0
    top_p: TopP = 1.0
    top_k: TopK = 0
    seed: Annotated[int, Meta(ge=0, le=2**63 - 1)] | None = None
    stop: Stop | Annotated[list[Stop], Meta(max_length=MAX_STOPS)] | None = None
    n: N = 1
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: User | None = None  # the routing key of an A/B split (else the API key's name)

    @property
    def stops(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)


class CompletionRequest(Sampling, kw_only=True, forbid_unknown_fields=True):
    prompt: Annotated[Text, Meta(min_length=1)]


class Message(Struct, forbid_unknown_fields=True):
    role: Literal["system", "user", "assistant"]
    content: Text


class ChatRequest(Sampling, kw_only=True, forbid_unknown_fields=True):
    messages: Annotated[list[Message], Meta(min_length=1, max_length=64)]
    max_completion_tokens: MaxTokens | None = None


class Usage(Struct):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class CompletionChoice(Struct):
    index: int
    text: str
    finish_reason: str | None
    logprobs: None = None


class Completion(Struct):
    id: str
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None
    object: str = "text_completion"


class ChatMessage(Struct, omit_defaults=True):
    role: str | None = None
    content: str | None = None


class ChatChoice(Struct):
    index: int
    message: ChatMessage
    finish_reason: str | None


class ChatCompletion(Struct):
    id: str
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage
    object: str = "chat.completion"


class ChatDelta(Struct):
    index: int
    delta: ChatMessage
    finish_reason: str | None


class ChatChunk(Struct):
    id: str
    created: int
    model: str
    choices: list[ChatDelta]
    usage: Usage | None = None
    object: str = "chat.completion.chunk"


class ModelCard(Struct):
    id: str
    created: int
    owned_by: str = "loopline"
    object: str = "model"


class ModelList(Struct):
    data: list[ModelCard]
    object: str = "list"


Choice = Annotated[int, Meta(ge=0, lt=MAX_N)]


class Answer(Struct, forbid_unknown_fields=True):
    """One choice of one completion."""

    id: CompletionId
    choice: Choice = 0


class FeedbackRequest(Struct, kw_only=True, forbid_unknown_fields=True):
    """A user's verdict on a completion's choice: ``rating`` (thumbs up or down), or
    ``preferred_over``: another answer to the same prompt that this one beat (another
    choice of the same completion, or another completion)."""

    id: CompletionId
    choice: Choice = 0
    rating: Literal["up", "down"] | None = None
    preferred_over: Answer | None = None


class FeedbackResponse(Struct):
    id: str
    logged: bool


ERROR_TYPES = {401: "authentication_error", 403: "permission_error", 404: "not_found_error",
               429: "rate_limit_error", 503: "service_unavailable"}  # fmt: skip


def error_body(status: int, problem: Any) -> bytes:
    """A refused request as OpenAI writes it (its clients read ``error.message``)."""
    message = problem.error if problem.detail is None else f"{problem.error} {problem.detail}"
    kind = ERROR_TYPES.get(status, "invalid_request_error" if status < 500 else "server_error")
    return encode({"error": {"message": message, "type": kind, "param": problem.field,
                             "code": None}})  # fmt: skip


def check_feedback(request: FeedbackRequest) -> None:
    from loopline.serving import refuse

    if (request.rating is None) == (request.preferred_over is None):
        raise refuse(422, "Give either 'rating' or 'preferred_over'.", field="rating")
    other = request.preferred_over
    if other is not None and (other.id, other.choice) == (request.id, request.choice):
        raise refuse(422, "A completion is not preferred over itself.", field="preferred_over")


encode = msgspec.json.Encoder().encode
