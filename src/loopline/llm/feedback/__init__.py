"""Fine-tuning on user feedback: a LoRA adapter trained with TRL (KTO on thumbs up or
down, DPO on preference pairs) over the engine's Gemma 3 rebuilt as a Hugging Face
model. ``transformers``, ``peft`` and ``trl`` are imported by the modules, not here."""
