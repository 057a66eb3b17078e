"""The event contract: pydantic models, the orjson codec, the topic catalogue, JSON Schema."""
