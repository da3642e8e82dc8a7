"""llm-proxy: a fast reverse proxy for LLM APIs that rewrites models and credentials and translates dialects."""

__version__ = "0.1.0"
