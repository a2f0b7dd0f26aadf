"""What moderation decides about: the policy categories, how severe each is, the actions a
policy can take, and the modalities and languages the evaluation set covers.

The categories follow the taxonomies of Llama Guard and OpenAI's moderation API, reduced to
six that apply to user content on a social service.
"""

from __future__ import annotations

from typing import Final, Literal

CATEGORIES: Final = ("harassment", "hate", "sexual", "violence", "self_harm", "spam")
Category = Literal["harassment", "hate", "sexual", "violence", "self_harm", "spam"]

# How much harm one missed item does, 1 (nuisance) to 5 (danger to life): the review
# queue's priority weighs it, and the default policy's actions follow it.
SEVERITY: Final[dict[str, int]] = {
    "spam": 1, "harassment": 3, "sexual": 3, "hate": 4, "violence": 5, "self_harm": 5,
}  # fmt: skip

ACTIONS: Final = ("allow", "age_gate", "blur", "remove", "escalate")
Action = Literal["allow", "age_gate", "blur", "remove", "escalate"]
# When several rules fire, the strongest action wins (escalate: a person decides).
STRENGTH: Final[dict[str, int]] = {a: i for i, a in enumerate(ACTIONS)}

MODALITIES: Final = ("text", "image", "audio", "video")
Modality = Literal["text", "image", "audio", "video"]

# The evaluation set's languages (ISO 639-1): 12, in 5 scripts.
LANGUAGES: Final = ("en", "es", "fr", "de", "it", "pt", "nl", "pl", "tr", "ru", "ar", "hi")

# Benign items that mention sensitive topics: what the false-positive rate is reported on.
SENSITIVE_BENIGN: Final = ("news", "medical", "reclaimed", "education")

# What a classifier tells apart: the categories, or none of them.
LABELS: Final = (*CATEGORIES, "benign")
