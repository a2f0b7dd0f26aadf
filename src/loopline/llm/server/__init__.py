"""``loopline serve llm``: the engine behind an OpenAI-compatible API on the serving
kernel, with LoRA adapters routed like models and feedback logged for fine-tuning."""
