"""The LLM serving engine: a paged KV cache with prefix caching, an iteration-level
scheduler (continuous batching, chunked prefill, preemption, back-pressure),
speculative decoding by prompt lookup, and sampling, over a decoder that reads and
writes the cache (loopline's own models and Gemma 3). PyTorch is imported here."""
