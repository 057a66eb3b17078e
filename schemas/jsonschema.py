"""JSON Schema files for producers in other languages, generated from the models.

``python -m schemas.jsonschema`` rewrites schemas/json/; a test fails when the files on
disk differ from what the models generate, so the two cannot drift apart.
"""

from __future__ import annotations

import sys
from pathlib import Path

import orjson

from schemas.codec import EVENT_TYPES

OUT_DIR = Path(__file__).parent / "json"


def render() -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for type_name, cls in sorted(EVENT_TYPES.items()):
        schema = cls.model_json_schema(mode="validation")
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"https://creditstream.example/schemas/{type_name}.json"
        files[f"{type_name}.json"] = orjson.dumps(schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    return files


def write(out_dir: Path = OUT_DIR) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    rendered = render()
    for stale in out_dir.glob("*.json"):
        if stale.name not in rendered:
            stale.unlink()
    paths = []
    for name, data in rendered.items():
        path = out_dir / name
        path.write_bytes(data)
        paths.append(path)
    return paths


def stale_files(out_dir: Path = OUT_DIR) -> list[str]:
    """Names of schema files that are missing, outdated or left over."""
    rendered = render()
    on_disk = {p.name for p in out_dir.glob("*.json")} if out_dir.exists() else set()
    bad = [n for n, data in rendered.items()
           if n not in on_disk or (out_dir / n).read_bytes() != data]
    return sorted(bad + list(on_disk - rendered.keys()))


if __name__ == "__main__":
    for p in write():
        print(p)
    sys.exit(0)
