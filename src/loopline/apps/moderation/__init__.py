"""Multimodal moderation: text, images, audio and video in many languages, through a
fast-to-thorough cascade, regional policies applied after scoring, and human review whose
verdicts become labels (docs/moderation.md).

Needs the ``moderation`` extra (ONNX Runtime, scikit-learn, Gemma 3 270M, Whisper,
OCR). Nothing heavy is imported here.
"""
