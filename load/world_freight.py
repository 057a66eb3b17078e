"""The simulator's freight receivables (docs/credit-policy.md 1.6).

Per core enterprise, a carrier in a freight program with trucks enrolled for freight
(not pledged); the core is its shipper. A flow is one trip of an idle truck: positions
every hour of event time for 7 hours (out to the consignee in 2 h, an hour there,
back in 2 h, then at the depot), the completed waybill (window: the first 6 hours) and,
some steps later, the shipper's payment. 1 trip in 10 never reaches the consignee (the
truck goes elsewhere): WAYBILL_NOT_CORROBORATED, the waybill never counts and is not
paid. Positions are follow-ups at fixed event times, emitted in order; a truck takes a
new trip only once its last one is out, so its readings never go back in time.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from schemas import events as ev
from schemas.common import Geofence, GeoPoint, Money

TRUCKS_PER_CARRIER = 3
READINGS = 8  # hourly over 7 h
STEP = timedelta(hours=1)


class Freight:
    """The freight mode of one world: carriers, trucks, setup events and trips."""

    def __init__(self, world: Any) -> None:
        from load.world import Party, _offset, tax_id

        cfg = world.cfg
        self.world, self.tag, self.seed = world, cfg.tag, cfg.seed
        self.carriers: list[Any] = []
        self.programs: dict[str, tuple[tuple[str, str], ...]] = {}
        self.trucks: list[tuple[str, Any, tuple[float, float]]] = []  # (truck id, carrier, depot)
        for c, core in enumerate(world.cores):
            pid = f"{cfg.tag}-frt{c}"
            self.programs[pid] = world.programs[f"{cfg.tag}-scf{c}"]
            carrier = Party(f"{cfg.tag}-car{c}", "fleet_operator", pid, tax_id(cfg.seed, 30_000 + c),
                            core.region, core.party_id, 1)
            self.carriers.append(carrier)
            for k in range(TRUCKS_PER_CARRIER):
                depot = world.sites[(c + k) % len(world.sites)] if world.sites else (28.2, 112.9)
                self.trucks.append((f"{cfg.tag}-trk{c}x{k}", carrier, depot))
        self._offset = _offset
        self.rng = random.Random(f"{cfg.seed}-freight")
        self.busy: set[str] = set()  # trucks whose trip's events are not all out yet
        self.free_at: dict[str, datetime] = {}  # truck -> event time its last trip ended
        self.hours: dict[str, float] = {t: 1000.0 for t, _, _ in self.trucks}

    def setup_events(self, mk: Any, at: datetime) -> list[ev.Envelope]:
        """The freight programs, the carriers, their shippers and their enrolled trucks."""
        out: list[ev.Envelope] = [mk(ev.ProgramRegistered, at, ev.ProgramPayload(
            program_id=pid, name=f"Freight {pid}", cap=_cny("5000000"),
            lenders=[ev.LenderShare(lender_id=lid, share=Decimal(sh)) for lid, sh in lenders]))
            for pid, lenders in self.programs.items()]
        for c in self.carriers:
            out += [mk(ev.BorrowerRegistered, at, ev.BorrowerPayload(
                party_id=c.party_id, kind=ev.PartyKind.fleet_operator, program_id=c.program_id,
                name=f"Company {c.party_id}", tax_id=c.tax_id, region=c.region)),
                # pydantic.mypy misses the default_factory of third_party_ids (inside Annotated).
                mk(ev.ConsentGranted, at, ev.ConsentPayload(borrower_id=c.party_id)),  # type: ignore[call-arg]
                mk(ev.SupplyRelationship, at, ev.SupplyRelationshipPayload(
                    supplier_id=c.party_id, buyer_id=c.buyer_id or "", tier=1))]
        out += [mk(ev.TruckEnrolled, at, ev.TruckEnrolledPayload(truck_id=t, carrier_id=c.party_id))
                for t, c, _ in self.trucks]
        return out

    def flow(self, biz: Any, at: datetime) -> ev.Envelope | None:
        """One trip of an idle truck (None when every truck is still on a trip)."""
        idle = [x for x in self.trucks if x[0] not in self.busy]
        if not idle:
            return None
        rng, mk = self.rng, biz.mk
        truck, carrier, depot = idle[rng.randrange(len(idle))]
        biz.n_flows += 1
        n = biz.n_flows
        start = max(at, self.free_at.get(truck, at))
        self.free_at[truck] = start + READINGS * STEP
        self.busy.add(truck)
        dest = self._offset(depot[0], depot[1], self.seed, n, 90, 60.0)
        reaches = rng.random() >= 0.1
        goes = dest if reaches else self._offset(depot[0], depot[1], self.seed, n, 95, 60.0)
        if not reaches and abs(goes[0] - dest[0]) + abs(goes[1] - dest[1]) < 0.05:
            goes = (dest[0] + 0.3, dest[1])  # elsewhere means elsewhere

        def reading(i: int) -> ev.Envelope:
            h = float(i)
            frac = min(h, 2) / 2 if h < 3 else max(0.0, 1 - (h - 3) / 2)
            lat, lon = depot[0] + (goes[0] - depot[0]) * frac, depot[1] + (goes[1] - depot[1]) * frac
            self.hours[truck] += 1.0 if 0 < h <= 5 else 0.0
            # pydantic.mypy misses the default_factory of fault_codes (inside Annotated).
            return mk(ev.EquipmentTelemetry, start + i * STEP, ev.EquipmentTelemetryPayload(  # type: ignore[call-arg]
                machine_id=truck, cumulative_operating_hours=round(self.hours[truck], 2),
                location=GeoPoint(lat=round(lat, 5), lon=round(lon, 5))))

        wid = f"{self.tag}-wb{n}"
        amount = _cny(f"{rng.randrange(8, 40) * 1000}")
        window = (start, start + timedelta(hours=6))
        for i in range(1, READINGS):
            biz._later(i, lambda t, i=i: reading(i))

        def completed(t: datetime) -> ev.Envelope:
            self.busy.discard(truck)  # the trip's last event: the truck may take the next one
            return mk(ev.WaybillCompleted, start + timedelta(hours=6, minutes=30), ev.WaybillCompletedPayload(
                waybill_id=wid, truck_id=truck, carrier_id=carrier.party_id, shipper_id=carrier.buyer_id or "",
                destination=Geofence(center=GeoPoint(lat=dest[0], lon=dest[1]), radius_km=1.0),
                window_start=window[0], window_end=window[1], amount=amount,
                due_date=(start + timedelta(days=30)).date()))

        biz._later(READINGS, completed)
        if reaches:
            biz._later(READINGS + 40, lambda t: mk(ev.WaybillPaid, max(t, start + timedelta(hours=7)),
                                                   ev.WaybillPaidPayload(waybill_id=wid, truck_id=truck,
                                                                         carrier_id=carrier.party_id)))
        return reading(0)


def _cny(amount: str) -> Money:
    return Money(amount=Decimal(amount), currency="CNY")
