"""The OpenAI model list (``GET /v1/models``), the same for both OpenAI dialects."""

from __future__ import annotations

import orjson


def encode_model_list(names: list[str]) -> bytes:
    data = [{"id": name, "object": "model", "created": 0, "owned_by": "llm-proxy"} for name in names]
    return orjson.dumps({"object": "list", "data": data})
