"""The workers' own Prometheus figures, read into the load report.

The report shows what the engine says about itself next to what the load tool measured
from outside. Only ``creditstream_*`` series are kept; a worker that exposes no metrics
endpoint is noted in the results, not an error of the run.
"""

from __future__ import annotations

from typing import Any

PREFIX = "creditstream"


def parse(text: str) -> dict[str, float]:
    """Prometheus text exposition -> {'name{label="v"}': value} for creditstream series."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if not s.name.startswith(PREFIX):
                continue
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return out


async def scrape(urls: list[str], timeout_s: float = 3.0) -> dict[str, Any]:
    """Sum of every worker's series (counters add up across workers), and errors per URL."""
    import aiohttp

    values: dict[str, float] = {}
    errors: dict[str, str] = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as session:
        for url in urls:
            try:
                async with session.get(url) as resp:
                    if resp.status != 200:
                        errors[url] = f"HTTP {resp.status}"
                        continue
                    for k, v in parse(await resp.text()).items():
                        values[k] = values.get(k, 0.0) + v
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                errors[url] = repr(exc)
    return {"urls": urls, "values": values, "errors": errors}
