"""Chat templates: a conversation as the text its model was tuned on.

A model names its template in its signature's ``meta["chat_template"]``; one without a
template (loopline's own models, trained on plain text) answers ``/v1/completions``
only. Templates are code here, not Jinja read from a file: there are few, and a
template from a model file would run as code anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from loopline.llm.server.api import Message
from loopline.serving import refuse


def gemma(messages: Sequence[Message]) -> str:
    """Gemma's turns (the format of the chat template in Google's Gemma 3 tokenizer
    configuration): ``<start_of_turn>user`` / ``model``, each ended by
    ``<end_of_turn>``; a system message goes before the first user turn's text (Gemma
    has no system role); roles must alternate user, model, user, ... The tokenizer adds
    ``<bos>``."""
    system = ""
    if messages[0].role == "system":
        system, messages = messages[0].content.strip() + "\n\n", messages[1:]
    if not messages:
        raise refuse(422, "A conversation needs a user message.", field="messages")
    parts = []
    for i, m in enumerate(messages):
        want = "user" if i % 2 == 0 else "assistant"
        if m.role != want:
            raise refuse(
                422, f"Message {i} should be from the {want}: roles alternate, user first.",
                field=f"messages[{i}].role",
            )  # fmt: skip
        role = "model" if m.role == "assistant" else "user"
        text = (system if i == 0 else "") + m.content.strip()
        parts.append(f"<start_of_turn>{role}\n{text}<end_of_turn>\n")
    return "".join(parts) + "<start_of_turn>model\n"


TEMPLATES: dict[str, Callable[[Sequence[Message]], str]] = {"gemma": gemma}


def render(template: str | None, messages: Sequence[Message], model: str) -> str:
    if template is None:
        raise refuse(
            422, f"Model {model!r} has no chat template: use /v1/completions.", field="model"
        )
    return TEMPLATES[template](messages)
