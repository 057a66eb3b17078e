"""A simulated supply chain for load runs, deterministic from a seed.

Core enterprises (OEMs) run two programs each: supply-chain finance for their tier-1 and
tier-2 suppliers and dealers, and equipment finance for contractors whose fleets of
excavators (ISO 15143-3 snapshots) and electric trucks (GB/T 32960 battery data) are
pledged as collateral. Everything is a function of :class:`WorldConfig`: the same config
gives byte-identical events, which is what makes two load runs comparable.

Telemetry is the hot path, so readings are built as plain dicts and serialised with
orjson (the same shape :func:`schemas.codec.encode` writes); the rarer setup and business
events go through the pydantic models, so they are valid by construction.

Telemetry is addressed by *slot*: slot ``j`` is the reading of machine ``j % machines`` in
round ``j // machines``, and round ``r`` happens at simulated time ``start + r * cadence``
(plus a fixed per-machine phase). Event time therefore only depends on the slot, is
monotonic per machine, and simulated time may run faster than wall time.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from math import cos, radians, sin, sqrt

import orjson

from load import world_freight, world_receipts
from load.schedule import SCENARIOS
from schemas import events as ev
from schemas.codec import encode
from schemas.common import Money
from schemas.topics import PLEDGES_TOPIC, TELEMETRY_TOPIC, route

DAY = 86400.0
Rec = tuple[str, bytes, bytes]
"""A record ready to produce: (topic, key, value)."""

# Region name, latitude, longitude of its centre (construction hubs).
REGIONS: tuple[tuple[str, float, float], ...] = (
    ("hunan", 28.23, 112.94), ("jiangsu", 32.06, 118.80),
    ("sichuan", 30.66, 104.06), ("shandong", 36.67, 117.00),
)
LENDER_MIXES: tuple[tuple[tuple[str, str], ...], ...] = (
    (("bank-cmb", "0.6"), ("mfi-hunan", "0.4")),
    (("bank-icbc", "0.5"), ("bank-boc", "0.5")),
    (("bank-ccb", "0.4"), ("mfi-sichuan", "0.3"), ("fintech-a", "0.3")),
    (("bank-abc", "0.7"), ("mfi-jiangsu", "0.3")),
    (("bank-icbc", "1.0"),),
)
# The construction season the equipment programs declare (seasonal_profile, January
# first): the Spring Festival lull in February, a slow winter; the simulated machines
# follow it, so a run in the low season shows SEASONAL_BASELINE and no fall in use.
CONSTRUCTION_SEASON = ("0.60", "0.50", "1", "1", "1", "1", "1", "1", "1", "1", "1", "0.80")
SEASON_SHARE = tuple(float(x) for x in CONSTRUCTION_SEASON)
FENCE_KM = 25.0
SITE_KM = 8.0
JITTER_KM = 0.03
SOURCE = "creditstream.load"

# ------------------------------------------------------------------ deterministic noise
_M64 = (1 << 64) - 1


def _mix(x: int) -> int:
    """splitmix64: a cheap, well-spread hash for per-(machine, round) noise."""
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def unit(seed: int, *parts: int) -> float:
    """A uniform number in [0, 1) that depends only on ``seed`` and ``parts``."""
    h = _mix(seed & _M64)
    for p in parts:
        h = _mix(h ^ (p & _M64))
    return (h >> 11) / float(1 << 53)


# ------------------------------------------------------------------ identifiers
_VIN_VALUE = {**{str(d): d for d in range(10)},
              **dict(zip("ABCDEFGH", range(1, 9), strict=True)), **dict(zip("JKLMN", range(1, 6), strict=True)),
              "P": 7, "R": 9, **dict(zip("STUVWXYZ", range(2, 10), strict=True))}
_VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
VIN_CHARS = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"


def vin_check_digit(vin: str) -> str:
    """ISO 3779 / GB 16735 check digit (position 9) of a 17-character VIN."""
    total = sum(_VIN_VALUE[c] * w for c, w in zip(vin, _VIN_WEIGHTS, strict=True))
    rem = total % 11
    return "X" if rem == 10 else str(rem)


def make_vin(seed: int, n: int) -> str:
    """A valid VIN: Chinese WMI, a descriptor, the check digit, year, plant, serial."""
    wmi = ("LFV", "LGW", "LSV", "LB3")[n % 4]
    vds = "".join(VIN_CHARS[int(unit(seed, n, 100 + i) * len(VIN_CHARS))] for i in range(5))
    tail = "MA" + f"{n % 1_000_000:06d}"  # model year 2021, plant A, serial
    draft = wmi + vds + "0" + tail
    return draft[:8] + vin_check_digit(draft) + draft[9:]


def tax_id(seed: int, n: int) -> str:
    """An 18-character unified social credit code look-alike."""
    return f"91{int(unit(seed, n, 7) * 10**16):016d}"


# ------------------------------------------------------------------ the world
@dataclass(frozen=True)
class WorldConfig:
    """Size and shape of the simulated world; ``tag`` is put in every id of a run."""

    seed: int = 1
    tag: str = "Lw1"
    cores: int = 2
    tier1_per_core: int = 3
    tier2_per_tier1: int = 2
    dealers_per_core: int = 2
    contractors: int = 20
    machines: int = 200
    truck_share: float = 0.3
    cadence_s: int = 600
    start: datetime = datetime(2026, 3, 2, tzinfo=UTC)
    tenant: str = "load"
    # Put before every lender id: a run that registers the world's lenders (webhook chaos)
    # then owns them and never shares a lender row with another run.
    lender_prefix: str = ""
    # Share of new business flows that are dealer flows (sales-based dealer financing:
    # unit pickups, retail sales, repayments, stock audits); 0 turns them off.
    dealer_share: float = 0.15
    # Months of production plans per dealer, from the start month.
    plan_months: int = 4
    # Shares of new business flows that are warehouse-receipt flows (world_receipts.py)
    # and truck trips with waybills (world_freight.py); 0 turns a mode off.
    receipt_share: float = 0.12
    freight_share: float = 0.04


@dataclass(frozen=True)
class Party:
    party_id: str
    kind: str
    program_id: str | None
    tax_id: str
    region: str
    buyer_id: str | None = None
    tier: int = 0


@dataclass(frozen=True, slots=True)
class Machine:
    index: int
    machine_id: str
    kind: str  # excavator | electric_truck
    borrower_id: str
    program_id: str
    region: str
    site: tuple[float, float]
    fence: tuple[float, float, float]
    vin: str | None
    baseline: float
    phase_s: int
    price: int


def _offset(lat: float, lon: float, seed: int, n: int, salt: int, max_km: float) -> tuple[float, float]:
    """A point at most ``max_km`` from (lat, lon), uniformly over the disc."""
    r = max_km * sqrt(unit(seed, n, salt))
    a = unit(seed, n, salt + 1) * 6.283185307179586
    dlat = r * sin(a) / 111.195
    dlon = r * cos(a) / (111.195 * cos(radians(lat)))
    return lat + dlat, lon + dlon


class World:
    """The parties and machines of one config, and the setup events that register them."""

    def __init__(self, cfg: WorldConfig) -> None:
        self.cfg = cfg
        t, s = cfg.tag, cfg.seed
        self.cores: list[Party] = []
        self.suppliers: list[Party] = []
        self.dealers: list[Party] = []
        self.contractors: list[Party] = []
        self.programs: dict[str, tuple[tuple[str, str], ...]] = {}
        n = 0
        for c in range(cfg.cores):
            region = REGIONS[c % len(REGIONS)][0]
            core = Party(f"{t}-core{c}", "core_enterprise", None, tax_id(s, n), region)
            n += 1
            self.cores.append(core)
            for kind in ("scf", "eq"):
                mix = LENDER_MIXES[int(unit(s, c, ord(kind[0])) * len(LENDER_MIXES))]
                self.programs[f"{t}-{kind}{c}"] = tuple((cfg.lender_prefix + lid, sh) for lid, sh in mix)
            for i in range(cfg.tier1_per_core):
                t1 = Party(f"{t}-s{c}x{i}", "supplier", f"{t}-scf{c}", tax_id(s, n), region, core.party_id, 1)
                n += 1
                self.suppliers.append(t1)
                for k in range(cfg.tier2_per_tier1):
                    self.suppliers.append(Party(f"{t}-s{c}x{i}x{k}", "supplier", f"{t}-scf{c}", tax_id(s, n),
                                                region, t1.party_id, 2))
                    n += 1
            for i in range(cfg.dealers_per_core):
                self.dealers.append(Party(f"{t}-d{c}x{i}", "dealer", f"{t}-scf{c}", tax_id(s, n), region,
                                          core.party_id, 0))
                n += 1
        self.sites: list[tuple[float, float]] = []
        for i in range(cfg.contractors):
            c = i % cfg.cores
            name, lat, lon = REGIONS[i % len(REGIONS)]
            self.contractors.append(Party(f"{t}-ctr{i}", "contractor", f"{t}-eq{c}", tax_id(s, n), name,
                                          self.cores[c].party_id, 0))
            n += 1
            self.sites.append(_offset(lat, lon, s, i, 11, 50.0))
        # Inventory and freight parties live in their modes' modules (own lists and
        # generators: the parties and flows above keep their sequences).
        self.receipts = world_receipts.Receipts(self)
        self.freight = world_freight.Freight(self)

    def machine(self, m: int) -> Machine:
        """Machine ``m``, computed from its index: a world of millions keeps none in memory."""
        cfg, s = self.cfg, self.cfg.seed
        ci = m * cfg.contractors // cfg.machines
        ctr = self.contractors[ci]
        clat, clon = self.sites[ci]
        truck = unit(s, m, 1) < cfg.truck_share
        mlat, mlon = _offset(clat, clon, s, m, 21, SITE_KM)
        return Machine(
            index=m, machine_id=f"{cfg.tag}-m{m}", kind="electric_truck" if truck else "excavator",
            borrower_id=ctr.party_id, program_id=ctr.program_id or "", region=ctr.region,
            site=(mlat, mlon), fence=(clat, clon, FENCE_KM), vin=make_vin(s, m) if truck else None,
            baseline=round(6.0 + 4.0 * unit(s, m, 2), 1), phase_s=int(unit(s, m, 3) * cfg.cadence_s),
            price=(600_000 + int(unit(s, m, 4) * 300_000)) if truck else (800_000 + int(unit(s, m, 4) * 700_000)))

    def iter_machines(self, n: int = 1, p: int = 0) -> Iterator[Machine]:
        """Machines ``p, p + n, p + 2n, ...``: one generator process's share."""
        return (self.machine(m) for m in range(p, self.cfg.machines, n))

    @property
    def machines(self) -> list[Machine]:
        return list(self.iter_machines())

    @property
    def borrowers(self) -> list[Party]:
        return self.suppliers + self.dealers + self.contractors

    def regions(self) -> list[str]:
        # Every contractor owns machines when there are at least as many machines.
        owners = self.contractors[:self.cfg.machines]
        return sorted({c.region for c in owners})

    # -------------------------------------------------------------- setup
    def registry_events(self) -> list[ev.Envelope]:
        """Programs, parties, consents and the supply graph, in that order."""
        mk = _Maker(self.cfg.tag + "-setup", self.cfg.tenant)
        at = self.cfg.start - timedelta(days=1)
        out: list[ev.Envelope] = []
        for pid, lenders in self.programs.items():
            cap = "50000000" if "-scf" in pid else "200000000"
            season = None if "-scf" in pid else [Decimal(x) for x in CONSTRUCTION_SEASON]
            out.append(mk(ev.ProgramRegistered, at, ev.ProgramPayload(
                program_id=pid, name=f"Program {pid}", cap=_cny(cap),
                lenders=[ev.LenderShare(lender_id=lid, share=Decimal(sh)) for lid, sh in lenders],
                parameters=ev.ProgramParameters(seasonal_profile=season))))
        for p in self.cores + self.borrowers:
            out.append(mk(ev.BorrowerRegistered, at, ev.BorrowerPayload(
                party_id=p.party_id, kind=ev.PartyKind(p.kind), program_id=p.program_id,
                name=f"Company {p.party_id}", tax_id=p.tax_id, region=p.region)))
        for p in self.borrowers:
            # pydantic.mypy misses the default_factory of third_party_ids (inside Annotated).
            out.append(mk(ev.ConsentGranted, at, ev.ConsentPayload(borrower_id=p.party_id)))  # type: ignore[call-arg]
        for p in self.suppliers:
            out.append(mk(ev.SupplyRelationship, at, ev.SupplyRelationshipPayload(
                supplier_id=p.party_id, buyer_id=p.buyer_id or "", tier=p.tier)))
        return out

    def pledge_record(self, m: Machine) -> Rec:
        """The pledge of one machine, built directly (a world may pledge millions)."""
        when = iso(self.cfg.start.timestamp() - DAY)
        acquired = self.cfg.start.date() - timedelta(days=30 + int(unit(self.cfg.seed, m.index, 5) * 1500))
        value = orjson.dumps({
            "event_id": f"{self.cfg.tag}-pl{m.index}", "type": "registry.pledge", "schema_version": 1,
            "tenant": self.cfg.tenant, "source": SOURCE, "occurred_at": when, "recorded_at": when,
            "payload": {"machine_id": m.machine_id, "borrower_id": m.borrower_id, "program_id": m.program_id,
                        "kind": m.kind, "price": {"amount": f"{m.price}.00", "currency": "CNY"},
                        "acquired_on": acquired.isoformat(), "useful_life_years": 10, "useful_life_hours": 20000,
                        "baseline_hours_per_day": m.baseline,
                        "geofence": {"center": {"lat": m.fence[0], "lon": m.fence[1]}, "radius_km": m.fence[2]}}})
        return PLEDGES_TOPIC, m.machine_id.encode(), value

    def dealer_plans(self) -> list[ev.Envelope]:
        """Each dealer's production plan from its OEM for the first ``plan_months`` months:
        sales-based dealer financing is bounded by it (docs/credit-policy.md 1.4)."""
        mk = _Maker(self.cfg.tag + "-plan", self.cfg.tenant)
        at = self.cfg.start - timedelta(days=1)
        out: list[ev.Envelope] = []
        for i, d in enumerate(self.dealers):
            units = 4 + int(unit(self.cfg.seed, i, 70) * 12)
            year, month = self.cfg.start.year, self.cfg.start.month
            for _ in range(self.cfg.plan_months):
                out.append(mk(ev.DealerPlan, at, ev.DealerPlanPayload(
                    dealer_id=d.party_id, oem_id=d.buyer_id or "", month=f"{year:04d}-{month:02d}",
                    amount=_cny(units * 800_000), units=units)))
                year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return out

    def setup_records(self) -> Iterator[Rec]:
        """Everything that registers the world: the registry first, then the pledges and
        the dealers' production plans."""
        for e in self.registry_events():
            yield to_record(e)
        for m in self.iter_machines():
            yield self.pledge_record(m)
        if self.cfg.dealer_share > 0:
            for e in self.dealer_plans():
                yield to_record(e)
        mk, at = _Maker(self.cfg.tag + "-modes", self.cfg.tenant), self.cfg.start - timedelta(days=1)
        for mode, share in ((self.receipts, self.cfg.receipt_share), (self.freight, self.cfg.freight_share)):
            if share > 0:
                yield from (to_record(e) for e in mode.setup_events(mk, at))


def _cny(amount: int | str) -> Money:
    return Money(amount=Decimal(str(amount)), currency="CNY")


def to_record(event: ev.Envelope) -> Rec:
    topic, key = route(event)
    return topic, key, encode(event)


class _Maker:
    """Envelopes with sequential ids under one prefix."""

    def __init__(self, prefix: str, tenant: str) -> None:
        self.prefix, self.tenant, self.n = prefix, tenant, 0

    def __call__(self, cls: type[ev.Envelope], at: datetime, payload: object) -> ev.Envelope:
        self.n += 1
        # call-arg: cls is a concrete event class; the Envelope base it is typed as declares no payload.
        return cls(event_id=f"{self.prefix}-{self.n}", type=cls.model_fields["type"].annotation.__args__[0],  # type: ignore[union-attr, call-arg]
                   tenant=self.tenant, source=SOURCE, occurred_at=at, recorded_at=at, payload=payload)


# ------------------------------------------------------------------ scenario plan


@dataclass(frozen=True)
class Plan:
    """What a scenario does to the world, in telemetry rounds and wall seconds.

    ``utilisation_drop``: from ``drop_round`` every machine works ``drop_factor`` of its
    usual hours. ``offline_region``: readings of ``offline_region`` in rounds
    ``offline_rounds`` are held back and delivered in one batch when the first reading of
    the next round is due (battery data flagged reissued, GB/T 32960 command 3).
    ``core_default``: core 0 becomes distressed at ``default_at_s`` and its dealers' loans
    go overdue. ``commodity_crash``: at ``price_crash_at_s`` every commodity the traders'
    receipts hold is quoted 20% lower (world_receipts.py): margin calls where their
    loans then exceed their limits. The burst is a property of the send schedule, not of
    the world.
    """

    scenario: str = "steady"
    drop_round: int | None = None
    drop_factor: float = 0.1
    offline_region: str | None = None
    offline_rounds: tuple[int, int] | None = None
    default_at_s: float | None = None
    price_crash_at_s: float | None = None
    # ``gradual_decline`` (decline_plan): borrowers whose business and machines fade.
    declines: tuple[Decline, ...] = ()

    def health(self, borrower_id: str, at: float) -> float:
        """1.0 = the borrower's usual business; below it its machines work less, fewer
        orders reach it, more deliveries are late and more invoices disputed."""
        for d in self.declines:
            if d.borrower_id == borrower_id:
                return d.health(at)
        return 1.0


@dataclass(frozen=True)
class Decline:
    """A borrower fading from ``start_s`` to ``floor`` at ``end_s`` (epoch seconds, event
    time), linearly, then defaulting (its loan goes overdue); or, when ``recovers``, a
    dip: down to ``floor`` at mid-span and back to 1.0 at ``end_s``, no default."""

    borrower_id: str
    start_s: float
    end_s: float
    floor: float
    recovers: bool = False

    def health(self, at: float) -> float:
        if at <= self.start_s or (self.recovers and at >= self.end_s):
            return 1.0
        x = min(1.0, (at - self.start_s) / (self.end_s - self.start_s))
        if self.recovers:
            x = 1 - abs(2 * x - 1)  # down to the floor at mid-span, then back up
        return 1 - (1 - self.floor) * x


def decline_plan(world: World, start_day: int = 30, days: int = 70) -> Plan:
    """``gradual_decline``: a third of the tier-1 suppliers and of the contractors fade
    over 3-4 weeks and then default; one supplier and one contractor dip for 2-3 weeks
    and recover (the false alarms a warning must not raise). Drawn from the seed."""
    rng = random.Random(f"{world.cfg.seed}-declines")
    t0 = world.cfg.start.timestamp()
    tier1 = [p.party_id for p in world.suppliers if p.tier == 1]
    owners = [c.party_id for c in world.contractors[:world.cfg.machines]]
    out = []
    for group in (tier1, owners):
        picked = rng.sample(group, min(len(group), max(1, len(group) // 3) + 1))
        for k, b in enumerate(picked):
            dip = k == len(picked) - 1
            span = rng.randint(14, 21) if dip else rng.randint(21, 30)
            start = t0 + DAY * rng.randint(start_day, max(start_day, days - span - 5))
            floor = rng.uniform(0.7, 0.85) if dip else rng.uniform(0.2, 0.4)
            out.append(Decline(b, start, start + span * DAY, round(floor, 3), recovers=dip))
    return Plan("gradual_decline", declines=tuple(out))


def plan_for(scenario: str, world: World, telemetry_slots: int, duration_s: float) -> Plan:
    """The plan of a named scenario for a run of ``telemetry_slots`` readings."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; choose one of {', '.join(SCENARIOS)}")
    rounds = max(1, -(-telemetry_slots // world.cfg.machines))
    if scenario == "utilisation_drop":
        return Plan(scenario, drop_round=rounds // 2)
    if scenario == "offline_region":
        r0 = rounds // 3
        day_rounds = max(1, int(DAY // world.cfg.cadence_s))
        # A day of readings when the run is long enough, else a third of the run.
        r1 = r0 + min(day_rounds, max(1, rounds // 3))
        return Plan(scenario, offline_region=world.regions()[0], offline_rounds=(r0, r1))
    if scenario == "core_default":
        return Plan(scenario, default_at_s=duration_s / 2)
    if scenario == "commodity_crash":
        return Plan(scenario, price_crash_at_s=duration_s / 2)
    return Plan(scenario)


# ------------------------------------------------------------------ telemetry
@dataclass
class _MachineState:
    milli_hours: int
    idle_milli_hours: int
    fuel_l: float
    soc: float
    soh: float
    mileage_km: float
    round: int = -1
    day: int = -1
    day_noise: float = 1.0
    season: float = 1.0


def iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat()


class TelemetrySim:
    """Readings of a set of machines (one generator process owns ``machine % n == p``)."""

    def __init__(self, world: World, plan: Plan, n: int = 1, p: int = 0) -> None:
        self.world, self.plan, self.n, self.p = world, plan, n, p
        cfg = world.cfg
        self.seed = cfg.seed
        self.start = cfg.start.timestamp()
        self.cadence = cfg.cadence_s
        self.own = list(world.iter_machines(n, p))
        self.state: dict[int, _MachineState] = {}
        offline = plan.offline_region
        self.offline_ids = {m.index for m in self.own if m.region == offline} if offline else set()
        self.held: list[Rec] = []

    def event_time(self, m: Machine, r: int) -> int:
        return int(self.start) + r * self.cadence + m.phase_s

    def slots(self, total: int) -> Iterator[tuple[int, list[Rec]]]:
        """(slot, records) for every slot of this process's machines below ``total``."""
        per_round = self.world.cfg.machines
        r = 0
        while True:
            base = r * per_round
            if base >= total:
                break
            for m in self.own:
                j = base + m.index
                if j >= total:
                    break
                yield j, self.slot(m, r)
            r += 1
        if self.held:  # the run ended inside the offline window: deliver what was held
            yield total, self._release()

    def slot(self, m: Machine, r: int) -> list[Rec]:
        plan = self.plan
        if plan.offline_rounds is not None:
            r0, r1 = plan.offline_rounds
            if r0 <= r < r1 and m.index in self.offline_ids:
                self.held.append(self.reading(m, r, reissued=True))
                return []
            if r >= r1 and self.held:
                return [*self._release(), self.reading(m, r)]
        return [self.reading(m, r)]

    def _release(self) -> list[Rec]:
        out, self.held = self.held, []
        return out

    def _init(self, m: Machine) -> _MachineState:
        s, i = self.seed, m.index
        hours = int((100 + unit(s, i, 30) * 4000) * 1000)
        return _MachineState(milli_hours=hours, idle_milli_hours=hours // 5, fuel_l=hours * 0.014,
                             soc=40 + unit(s, i, 31) * 60, soh=92 + unit(s, i, 32) * 7,
                             mileage_km=5000 + unit(s, i, 33) * 80000)

    def reading(self, m: Machine, r: int, reissued: bool = False) -> Rec:
        """Reading of machine ``m`` in round ``r``; rounds of a machine must come in order."""
        st = self.state.get(m.index)
        if st is None:
            st = self.state[m.index] = self._init(m)
        if r <= st.round:
            raise ValueError(f"machine {m.machine_id}: round {r} after {st.round}: telemetry must move forward")
        at = self.event_time(m, r)
        if st.round >= 0:
            self._advance(m, st, r, at)
        st.round = r
        lat, lon = self._where(m, r)
        if m.kind == "excavator":
            payload = {
                "machine_id": m.machine_id, "oem": "SANY", "model": "SY215C",
                "serial_number": f"SY{m.index:08d}",
                "cumulative_operating_hours": st.milli_hours / 1000,
                "cumulative_idle_hours": st.idle_milli_hours / 1000,
                "fuel_used_litres": round(st.fuel_l, 1),
                "fuel_remaining_pct": round(100 - (st.fuel_l * 3.1) % 85, 1),
                "location": {"lat": lat, "lon": lon}, "engine_running": unit(self.seed, m.index, r, 40) < 0.6,
            }
            typ = "telemetry.equipment"
        else:
            soc = st.soc
            payload = {
                "machine_id": m.machine_id, "vin": m.vin, "soc_pct": round(soc, 1), "soh_pct": round(st.soh, 2),
                "pack_voltage_v": round(540 + soc * 1.2, 1),
                "pack_current_a": round(-150 + 200 * unit(self.seed, m.index, r, 41), 1),
                "max_cell_voltage_v": round(3.3 + soc * 0.009, 3), "min_cell_voltage_v": round(3.28 + soc * 0.009, 3),
                "max_temp_c": round(22 + 15 * unit(self.seed, m.index, r, 42), 1), "alarm_level": 0,
                "alarm_flags": 0, "mileage_km": round(st.mileage_km, 1), "location": {"lat": lat, "lon": lon},
                "reissued": reissued,
            }
            typ = "telemetry.battery"
        when = iso(at)
        mid = m.machine_id
        value = orjson.dumps({"event_id": f"{self.world.cfg.tag}-t{m.index}r{r}", "type": typ, "schema_version": 1,
                              "tenant": self.world.cfg.tenant, "source": SOURCE, "occurred_at": when,
                              "recorded_at": when, "payload": payload})
        return TELEMETRY_TOPIC, mid.encode(), value

    def duty(self, m: Machine, st: _MachineState, r: int, at: int) -> float:
        """Fraction of wall time the machine works: its baseline, daily noise, the plan."""
        day = at // 86400
        if day != st.day:
            st.day = day
            st.day_noise = 0.75 + 0.5 * unit(self.seed, m.index, day, 50)
            # Machines follow their program's construction season (CONSTRUCTION_SEASON).
            st.season = SEASON_SHARE[datetime.fromtimestamp(day * 86400, UTC).month - 1]
        d = m.baseline / 24.0 * st.day_noise * st.season
        if self.plan.drop_round is not None and r >= self.plan.drop_round:
            d *= self.plan.drop_factor
        if self.plan.declines:
            d *= self.plan.health(m.borrower_id, at)
        return min(1.0, d)

    def _advance(self, m: Machine, st: _MachineState, r: int, at: int) -> None:
        prev_at = self.event_time(m, st.round)
        elapsed_h = (at - prev_at) / 3600.0
        worked = elapsed_h * self.duty(m, st, r, at)
        # Integer milli-hours rounded down: the meter never runs faster than wall time.
        add = int(worked * 1000)
        st.milli_hours += add
        st.idle_milli_hours += add // 5
        st.fuel_l += worked * 14.0
        st.mileage_km += worked * 35.0
        st.soc = 100 - ((100 - st.soc) + worked * 9.0) % 80  # recharged at 20%
        st.soh = max(60.0, st.soh - worked * 0.0005)

    def _where(self, m: Machine, r: int) -> tuple[float, float]:
        # At its site, with a few tens of metres of movement: inside the fence, no jumps.
        lat, lon = _offset(m.site[0], m.site[1], self.seed, m.index * 1_000_003 + r, 60, JITTER_KM)
        return round(lat, 6), round(lon, 6)


# ------------------------------------------------------------------ business events
@dataclass(order=True)
class _FollowUp:
    due: int
    n: int
    make: Callable[[datetime], ev.Envelope] = field(compare=False)


class BusinessSim:
    """Invoice lifecycles, purchase orders with shipments, drawdowns and repayments.

    ``next(at)`` returns the next event at simulated time ``at``: a follow-up that has
    come due (confirmation, payment, delivery, repayment) or the start of a new flow.
    The sequence depends only on the seed and the order of calls.
    """

    def __init__(self, world: World, plan: Plan | None = None) -> None:
        self.world = world
        cfg = world.cfg
        self.rng = random.Random(f"{cfg.seed}-business")
        # A gradual_decline plan fades some borrowers' business; its draws have their
        # own generator, so the other flows keep their sequence.
        self.plan = plan or Plan()
        self.decline_rng = random.Random(f"{cfg.seed}-decline-flows")
        self.defaulted: set[str] = set()
        self.mk = _Maker(f"{cfg.tag}-b", cfg.tenant)
        self.k = 0
        self.pending: deque[_FollowUp] = deque()
        self.tier1 = [p for p in world.suppliers if p.tier == 1]
        self.n_flows = 0
        # Dealer flows draw from their own generator: the other flows keep their sequence.
        self.dealer_rng = random.Random(f"{cfg.seed}-dealers")
        self.stock: dict[str, list[str]] = {d.party_id: [] for d in world.dealers}
        self.modes_rng = random.Random(f"{cfg.seed}-modes")

    def next(self, at: datetime) -> ev.Envelope:
        self.k += 1
        if self.pending and self.pending[0].due <= self.k:
            return self.pending.popleft().make(at)
        return self._new_flow(at)

    def _later(self, steps: int, make: Callable[[datetime], ev.Envelope]) -> None:
        self.n_flows += 1
        self.pending.append(_FollowUp(self.k + steps, self.n_flows, make))
        # Few pending at a time: a sorted insert keeps it simple.
        self.pending = deque(sorted(self.pending))

    def _new_flow(self, at: datetime) -> ev.Envelope:
        rng, mk, tag = self.rng, self.mk, self.world.cfg.tag
        if self.world.dealers and self.dealer_rng.random() < self.world.cfg.dealer_share:
            return self._dealer_flow(at)
        roll, cfg = self.modes_rng.random(), self.world.cfg
        if roll < cfg.receipt_share:
            return self.world.receipts.flow(self, at)
        if roll < cfg.receipt_share + cfg.freight_share and (trip := self.world.freight.flow(self, at)) is not None:
            return trip
        roll = rng.random()
        self.n_flows += 1
        n = self.n_flows
        if roll < 0.45 and self.world.suppliers:
            s = rng.choice(self.world.suppliers)
            ref = ev.InvoiceRef(seller_tax_id=s.tax_id, invoice_number=f"{tag}-{n}", issue_date=at.date(),
                                total=_cny(f"{rng.randrange(20, 900) * 1000}.00"))
            seller, buyer = s.party_id, s.buyer_id or ""

            def act(cls: type[ev.Envelope], payload_cls: type, **extra: object) -> Callable[[datetime], ev.Envelope]:
                return lambda t: mk(cls, t, payload_cls(invoice=ref, seller_id=seller, buyer_id=buyer, **extra))

            self._later(2, act(ev.InvoiceConfirmed, ev.InvoiceActionPayload))
            end = rng.random()
            disputed = 0.1 + 0.4 * (1 - self.plan.health(seller, at.timestamp()))  # 0.1 when healthy
            if end < disputed:
                self._later(6, act(ev.InvoiceDisputed, ev.InvoiceDisputedPayload, reason="short delivery"))
            elif end < disputed + 0.1:
                self._later(30, act(ev.InvoicePartiallyPaid, ev.InvoicePartiallyPaidPayload,
                                    paid=_cny(f"{ref.total.amount / 2:.2f}")))
            else:
                self._later(40, act(ev.InvoicePaid, ev.InvoiceActionPayload))
            return mk(ev.InvoiceIssued, at, ev.InvoiceIssuedPayload(
                invoice=ref, seller_id=seller, buyer_id=buyer, due_date=ref.issue_date + timedelta(days=90)))
        if roll < 0.75 and self.tier1:
            s = rng.choice(self.tier1)
            health = self.plan.health(s.party_id, at.timestamp())
            if health < 1 and self.decline_rng.random() > health:  # the buyer orders elsewhere
                others = [p for p in self.tier1 if p.buyer_id == s.buyer_id
                          and self.plan.health(p.party_id, at.timestamp()) > health]
                if others:
                    s = self.decline_rng.choice(others)
                    health = self.plan.health(s.party_id, at.timestamp())
            po = f"{tag}-po{n}"
            refp = {"po_id": po, "buyer_id": s.buyer_id or "", "supplier_id": s.party_id}
            on_time = rng.random() < 0.85 * health
            self._later(2, lambda t: mk(ev.PurchaseOrderConfirmed, t, ev.PurchaseOrderRefPayload(**refp)))
            self._later(8, lambda t: mk(ev.ShipmentObserved, t, ev.ShipmentPayload(
                shipment_id=f"{po}-shp", po_id=po, supplier_id=s.party_id, biz_step=ev.BizStep.receiving,
                disposition=ev.Disposition.delivered, planned_at=t + timedelta(hours=6 if on_time else -48),
                actual_at=t)))
            return mk(ev.PurchaseOrderIssued, at, ev.PurchaseOrderIssuedPayload(
                **refp, amount=_cny(f"{rng.randrange(50, 2000) * 1000}.00"), delivery_due=at + timedelta(days=14)))
        b = rng.choice(self.world.borrowers)
        loan = f"{tag}-ln{n}"
        amount = _cny(f"{rng.randrange(10, 200) * 1000}.00")
        self._later(25, lambda t: mk(ev.Repayment, t, ev.RepaymentPayload(loan_id=loan, borrower_id=b.party_id,
                                                                          amount=amount)))
        return mk(ev.Drawdown, at, ev.DrawdownPayload(loan_id=loan, borrower_id=b.party_id,
                                                      program_id=b.program_id or "", amount=amount))

    def _dealer_flow(self, at: datetime) -> ev.Envelope:
        """Sales-based dealer financing: a unit picked up from the OEM, sold at retail
        some steps later and, mostly, repaid soon after (1 in 20 is not: sold out of
        trust once 10 days pass); or a stock audit of the units on the dealer's lot."""
        rng, mk = self.dealer_rng, self.mk
        self.n_flows += 1
        n = self.n_flows
        d = rng.choice(self.world.dealers)
        did, stock = d.party_id, self.stock[d.party_id]
        if rng.random() < 0.2 and stock:
            present = list(stock)
            if rng.random() < 0.05:  # a unit the auditor does not find
                present.pop(rng.randrange(len(present)))
            return mk(ev.StockAudit, at, ev.StockAuditPayload(dealer_id=did, audit_id=f"{self.world.cfg.tag}-aud{n}",
                                                              present_unit_ids=present))
        uid = f"{self.world.cfg.tag}-u{n}"
        stock.append(uid)

        def sold(t: datetime) -> ev.Envelope:
            stock.remove(uid)
            return mk(ev.RetailSale, t, ev.RetailSalePayload(dealer_id=did, unit_id=uid))

        self._later(rng.randrange(30, 150), sold)
        if rng.random() >= 0.05:
            self._later(160, lambda t: mk(ev.UnitRepaid, t, ev.UnitRepaidPayload(dealer_id=did, unit_id=uid)))
        return mk(ev.UnitPickedUp, at, ev.UnitPickedUpPayload(
            dealer_id=did, oem_id=d.buyer_id or "", unit_id=uid, model="SY215C",
            wholesale_price=_cny(f"{rng.randrange(300, 1200) * 1000}.00")))

    def core_default(self, at: datetime) -> list[ev.Envelope]:
        """Core 0 is distressed: its suppliers' buyer factors fall; its dealers go overdue."""
        core = self.world.cores[0]
        out = [self.mk(ev.PartyStatusChanged, at, ev.PartyStatusPayload(
            party_id=core.party_id, status=ev.PartyStatus.distressed, reason="missed bond coupon"))]
        for d in self.world.dealers:
            if d.buyer_id == core.party_id:
                loan = f"{self.world.cfg.tag}-ln-{d.party_id}"
                out.append(self.mk(ev.Drawdown, at, ev.DrawdownPayload(
                    loan_id=loan, borrower_id=d.party_id, program_id=d.program_id or "", amount=_cny("300000.00"))))
                out.append(self.mk(ev.Overdue, at, ev.OverduePayload(
                    loan_id=loan, borrower_id=d.party_id, days_past_due=35, amount=_cny("300000.00"))))
        return out

    def decline_defaults(self, at: datetime) -> list[ev.Envelope]:
        """The loans of the plan's fading borrowers whose decline has ended go overdue
        (a drawdown, then its overdue notice), once each: the ground truth an early
        warning is measured against."""
        out = []
        for d in self.plan.declines:
            if d.recovers or d.borrower_id in self.defaulted or at.timestamp() < d.end_s:
                continue
            self.defaulted.add(d.borrower_id)
            b = next(p for p in self.world.borrowers if p.party_id == d.borrower_id)
            loan = f"{self.world.cfg.tag}-ln-{b.party_id}"
            out += [self.mk(ev.Drawdown, at, ev.DrawdownPayload(loan_id=loan, borrower_id=b.party_id,
                                                                 program_id=b.program_id or "", amount=_cny("200000.00"))),
                    self.mk(ev.Overdue, at, ev.OverduePayload(loan_id=loan, borrower_id=b.party_id, days_past_due=30,
                                                              amount=_cny("200000.00")))]
        return out

