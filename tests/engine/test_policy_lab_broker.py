"""Issue 18, done when: a policy change is diffed, shadowed live and promoted through the
real broker. A champion engine and a shadow engine (candidate 2027.01-1) read the same
inputs; the diff over the recorded input topics gives what each published; the shadow's
divergences endpoint lists the borrower; the promotion command records who promoted what
and the champion decides under the new version from then on, saying so to lenders."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import orjson
import pytest

from connectors.kafka_io import TopicReader, produce_events
from load.workers import stop_process
from schemas import codec
from schemas.config import REPO_ROOT, Settings
from schemas.topics import LIMITS_TOPIC, REGISTRY_TOPIC, shadow_topics
from streams.domain.policy import POLICY_VERSION
from streams.replay import Replay
from tests.engine import scenarios as sc

CANDIDATE = "2027.01-1"


class Engine:
    """One `creditstream worker` process (champion, or shadow with ``--shadow``)."""

    def __init__(self, app_id: str, root: Path, *extra: str) -> None:
        from creditstream.stack.process import free_port

        self.app_id, self.port = app_id, free_port()
        self.data, self.log = root / app_id, root / f"{app_id}.log"
        self.cmd = [sys.executable, "-m", "creditstream.cli", "worker", "--app-id", app_id, "--data-dir",
                    str(self.data), "--start-at", "latest", "--web-port", str(self.port), "--loglevel", "info", *extra]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.data.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.cmd, stdout=out, stderr=subprocess.STDOUT, cwd=REPO_ROOT,
                                         start_new_session=True)

    def wait_ready(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc and self.proc.poll() is None, self.tail()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"{self.app_id} not ready:\n{self.tail()}")

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=60) as r:
            return json.loads(r.read())

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:]) if self.log.exists() else ""

    def stop(self) -> None:
        stop_process(self.proc)


def _cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "creditstream.cli", *args], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _final(events: list, policy: str | None = None) -> dict:
    r = Replay(policy)
    final = {}
    for e in events:
        final.update({o.key: o.value["payload"] for o in r.feed(codec.encode(e)) if o.topic == LIMITS_TOPIC})
    return final


@pytest.mark.integration
async def test_a_policy_change_diffed_shadowed_and_promoted_through_the_broker(
        bootstrap: str, settings: Settings, producer, tmp_path: Path) -> None:
    uid = uuid.uuid4().hex[:8]
    events, _ = sc.utilisation_rising(uid)
    borrower = f"ctr-{uid}"
    champion_now, shadow_now = _final(events)[borrower], _final(events, CANDIDATE)[borrower]
    assert champion_now["limit"] != shadow_now["limit"]  # the candidate matters for this borrower

    root = settings.state_dir / "test-workers"
    champion = Engine(f"cs-champion-{uid}", root)
    shadow = Engine(f"cs-shadow-{uid}", root, "--shadow", CANDIDATE)
    shadow_limits = shadow_topics(shadow.app_id)[LIMITS_TOPIC]
    for e in (champion, shadow):
        e.start()
    try:
        for e in (champion, shadow):
            e.wait_ready()
        async with TopicReader(bootstrap, LIMITS_TOPIC, shadow_limits, REGISTRY_TOPIC) as reader:
            records: list = []

            def updates(rs: list, topic: str, source: str | None = None) -> list[dict]:
                out = []
                for r in rs:
                    if r.topic == topic and r.key == borrower.encode():
                        v = orjson.loads(r.value)
                        if source is None or v["source"] == source:
                            out.append(v["payload"])
                return out

            def mine(rs: list) -> list[dict]:
                return updates(rs, LIMITS_TOPIC, f"creditstream.engine.{champion.app_id}")

            def theirs(rs: list) -> list[dict]:
                return updates(rs, shadow_limits)

            async def wait(pred, timeout: float = 240) -> None:
                records.extend(await reader.read(lambda rs: pred(records + rs), timeout=timeout))
                assert pred(records), (mine(records)[-1:], theirs(records)[-1:], champion.tail(), shadow.tail())

            # Registry and pledge first, then the telemetry (one partition: the replay's order).
            setup = [e for e in events if e.type.startswith("registry.")]
            await produce_events(producer, setup)
            await wait(lambda rs: mine(rs) and theirs(rs))
            await produce_events(producer, [e for e in events if e not in setup])
            await wait(lambda rs: mine(rs) and theirs(rs) and mine(rs)[-1]["limit"] == champion_now["limit"]
                       and theirs(rs)[-1]["limit"] == shadow_now["limit"])
            live_a, live_b = mine(records)[-1], theirs(records)[-1]
            assert (live_a["policy_version"], live_b["policy_version"]) == (POLICY_VERSION, CANDIDATE)
            # The shadow never published to the lenders' topic.
            assert not [r for r in records if r.topic == LIMITS_TOPIC
                        and orjson.loads(r.value)["source"] == f"creditstream.engine.{shadow.app_id}"]

            # 1. The diff over the recorded input topics: what each engine published live.
            out = tmp_path / "diff"
            done = _cli("policy", "diff", "--from", POLICY_VERSION, "--to", CANDIDATE, "--borrowers", borrower,
                        "--out", str(out))
            assert "policy diff" in done.stderr and "events," in done.stderr  # progress shown
            report = json.loads((out / "report.json").read_text())
            assert report["borrowers"] == 1 and report["borrowers_changed"] == 1
            row = report["changes"][0]
            assert (row["before"], row["after"]) == (live_a["limit"]["amount"], live_b["limit"]["amount"])
            assert "<svg" in (out / "report.html").read_text()

            # 2. The operator's view of the shadow: this borrower diverges.
            view = shadow.get(f"/shadow/divergences?champion={champion.app_id}&day=all")
            div = [d for d in view["divergences"] if d["borrower_id"] == borrower]
            assert len(div) == 1 and div[0]["change"] == row["change"]
            assert div[0]["champion"]["policy_version"] == POLICY_VERSION
            assert div[0]["shadow"]["policy_version"] == CANDIDATE

            # 3. Promotion: an audit event on the registry, then decisions under the new version.
            shadow_count, last_version = len(theirs(records)), mine(records)[-1]["version"]
            done = _cli("policy", "promote", CANDIDATE, "--by", "Credit committee (test)", "--reason", uid)
            assert f"policy {CANDIDATE} promoted by Credit committee (test)" in done.stdout
            await wait(lambda rs: mine(rs)[-1]["policy_version"] == CANDIDATE)
            promo = [orjson.loads(r.value) for r in records if r.topic == REGISTRY_TOPIC
                     and orjson.loads(r.value)["type"] == "registry.policy_promoted"
                     and orjson.loads(r.value)["payload"].get("reason") == uid]
            assert len(promo) == 1 and promo[0]["payload"]["promoted_by"] == "Credit committee (test)"
            assert promo[0]["payload"]["version"] == CANDIDATE and promo[0]["tenant"] == "creditstream"
            after = mine(records)[-1]
            said = [r["text"] for r in after["reasons"] if r["code"] == "POLICY_CHANGED"]
            assert said == [f"The credit policy changed from version {POLICY_VERSION} to {CANDIDATE}; "
                            "this limit is decided under the new version."]
            assert promo[0]["event_id"] in after["trigger_event_ids"]
            # The replay of the same inputs with the promotion after them, in one update.
            # (Not the replay's version number: the registration and the pledge reach stage
            # 2 from two lanes, so how many updates came before depends on their order.)
            expected = _final([*events, codec.decode(orjson.dumps(promo[0]))])[borrower]
            assert after["limit"] == expected["limit"] and after["version"] == last_version + 1
            # The shadow is pinned to its version: it does not read the promotion.
            records.extend(await reader.read(lambda rs: False, timeout=5))
            assert len(theirs(records)) == shadow_count
    finally:
        for e in (champion, shadow):
            e.stop()
