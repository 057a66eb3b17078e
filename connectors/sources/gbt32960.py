"""GB/T 32960.3 (EV remote monitoring) frames: pure decoder, encoder and event mapping.

Frame layout: ``##`` | command | response flag | VIN (17 ASCII) | encryption | data length
(2 bytes, big endian) | data | BCC (XOR of every byte from command through data).
Real-time (2) and reissued (3) data: a 6-byte time (YY MM DD hh mm ss, China time UTC+8),
then information blocks, each a type byte followed by a body whose length the standard
fixes or lets us compute. Nothing here does I/O; the decoder raises only
:class:`GbtDecodeError`, whatever the bytes (it is fuzzed).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from enum import IntEnum
from typing import Any, TypedDict

from connectors.sources.common import SourceError, build_event, is_id
from schemas.events import BatteryTelemetry

START = b"##"
# The 2025 edition keeps the header layout but starts with '$$' and adds signatures,
# SM2/SM4 encryption and new blocks: recognised (framed, answered, refused), not decoded.
START_2025 = b"$$"
STARTS = (START, START_2025)
HEADER_LEN = 24  # '##' + command + flag + VIN + encryption + length
CHINA = timezone(timedelta(hours=8))
MAX_DATA_LEN = 65531  # the standard's limit for the data unit
VIN_CHARS = frozenset(b"ABCDEFGHJKLMNPRSTUVWXYZ0123456789")  # no I, O, Q
# A platform's frames carry the platform's own 17-byte id where vehicles put the VIN.
PLATFORM_ID_CHARS = frozenset(range(0x20, 0x7F)) | {0}
# Types 0x80-0xFE are the vendor's own blocks: a 2-byte length says how much to skip.
VENDOR_BLOCKS = range(0x80, 0xFF)
PLATFORM_USER_LEN, PLATFORM_PASSWORD_LEN = 12, 20


class Command(IntEnum):
    LOGIN = 0x01
    REALTIME = 0x02
    REISSUED = 0x03
    LOGOUT = 0x04
    PLATFORM_LOGIN = 0x05
    PLATFORM_LOGOUT = 0x06
    HEARTBEAT = 0x07
    TIME_SYNC = 0x08


class Flag(IntEnum):
    SUCCESS = 0x01
    ERROR = 0x02
    VIN_DUPLICATE = 0x03
    COMMAND = 0xFE  # a request that expects an answer


ENCRYPTION_NONE = 0x01


class GbtDecodeError(SourceError):
    """A frame that cannot be decoded; ``vin`` and ``command`` are kept when known, to answer."""

    def __init__(self, reason: str, message: str, *, command: int | None = None,
                 vin: str | None = None, start: bytes = START) -> None:
        super().__init__(reason, message)
        self.command = command
        self.vin = vin
        self.start = start  # the edition's start mark, so the answer speaks it too


class _FrameContext(TypedDict):
    """What a :class:`GbtDecodeError` keeps of the frame it refuses (its keyword arguments)."""

    command: int
    vin: str | None
    start: bytes


# ---------------------------------------------------------------- decoded records
@dataclass(frozen=True)
class Vehicle:
    status: int | None          # 1 started, 2 stopped, 3 other
    charging: int | None        # 1 parked charging, 2 driving charging, 3 not charging, 4 done
    mode: int | None            # 1 EV, 2 hybrid, 3 fuel
    speed_kmh: float | None
    mileage_km: float | None
    voltage_v: float | None
    current_a: float | None
    soc_pct: int | None
    dcdc: int | None
    gear: int | None
    insulation_kohm: int | None


@dataclass(frozen=True)
class Location:
    valid: bool
    lat: float
    lon: float


@dataclass(frozen=True)
class Extremes:
    max_cell_subsystem: int | None
    max_cell_no: int | None
    max_cell_v: float | None
    min_cell_subsystem: int | None
    min_cell_no: int | None
    min_cell_v: float | None
    max_temp_subsystem: int | None
    max_temp_probe: int | None
    max_temp_c: int | None
    min_temp_subsystem: int | None
    min_temp_probe: int | None
    min_temp_c: int | None


@dataclass(frozen=True)
class Alarms:
    max_level: int | None
    flags: int
    battery_faults: tuple[int, ...] = ()
    motor_faults: tuple[int, ...] = ()
    engine_faults: tuple[int, ...] = ()
    other_faults: tuple[int, ...] = ()


@dataclass(frozen=True)
class Frame:
    command: int
    flag: int
    vin: str
    encryption: int
    data: bytes
    time: datetime | None = None          # the data unit's time, aware (UTC+8)
    vehicle: Vehicle | None = None
    location: Location | None = None
    extremes: Extremes | None = None
    alarms: Alarms | None = None
    skipped_blocks: tuple[int, ...] = ()
    login_serial: int | None = None
    iccid: str | None = None
    platform_user: str | None = None      # platform login (0x05) only
    platform_password: str | None = None

    @property
    def is_request(self) -> bool:
        return self.flag == Flag.COMMAND

    @property
    def is_platform(self) -> bool:
        return self.command in (Command.PLATFORM_LOGIN, Command.PLATFORM_LOGOUT)


# ---------------------------------------------------------------- helpers
def bcc(data: bytes | bytearray) -> int:
    """XOR of all bytes (the frame checksum)."""
    out = 0
    for b in data:
        out ^= b
    return out


def _u8(v: int) -> int | None:
    return None if v in (0xFE, 0xFF) else v  # 0xFE abnormal, 0xFF invalid


def _u16(v: int) -> int | None:
    return None if v in (0xFFFE, 0xFFFF) else v


def _u32(v: int) -> int | None:
    return None if v in (0xFFFFFFFE, 0xFFFFFFFF) else v


def _scaled(v: int | None, scale: float, offset: float = 0.0) -> float | None:
    return None if v is None else round(v * scale + offset, 3)


def _in_range(v: int | None, hi: int) -> int | None:
    # Values outside the standard's valid range are treated as not reported.
    return v if v is not None and v <= hi else None


class _Reader:
    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise GbtDecodeError("truncated_block", f"{what}: needs {n} bytes at offset {self.pos}, "
                                 f"data unit has {len(self.data)}")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def u8(self, what: str) -> int:
        return self.take(1, what)[0]

    def u16(self, what: str) -> int:
        return int.from_bytes(self.take(2, what), "big")

    def u32(self, what: str) -> int:
        return int.from_bytes(self.take(4, what), "big")

    @property
    def left(self) -> int:
        return len(self.data) - self.pos


def _time(r: _Reader) -> datetime:
    yy, mo, dd, hh, mi, ss = r.take(6, "time")
    try:
        return datetime(2000 + yy, mo, dd, hh, mi, ss, tzinfo=CHINA)
    except ValueError:
        raise GbtDecodeError("bad_time", f"invalid time {yy:02d}-{mo:02d}-{dd:02d} "
                             f"{hh:02d}:{mi:02d}:{ss:02d}") from None


def _vehicle(r: _Reader) -> Vehicle:
    (status, charging, mode, speed, mileage, voltage, current, soc, dcdc, gear, insulation,
     _accel, _brake) = struct.unpack(">BBBHIHHBBBHBB", r.take(20, "vehicle block"))
    return Vehicle(
        status=_u8(status), charging=_u8(charging), mode=_u8(mode),
        speed_kmh=_scaled(_in_range(_u16(speed), 2200), 0.1),
        mileage_km=_scaled(_in_range(_u32(mileage), 9999999), 0.1),
        voltage_v=_scaled(_in_range(_u16(voltage), 10000), 0.1),
        current_a=_scaled(_in_range(_u16(current), 20000), 0.1, -1000.0),
        soc_pct=_in_range(_u8(soc), 100), dcdc=_u8(dcdc), gear=gear,
        insulation_kohm=_in_range(_u16(insulation), 60000))


def _location(r: _Reader) -> Location:
    status, lon, lat = struct.unpack(">BII", r.take(9, "location block"))
    lat_d, lon_d = lat / 1e6, lon / 1e6
    valid = not status & 0x01 and lat_d <= 90 and lon_d <= 180
    return Location(valid=valid, lat=-lat_d if status & 0x02 else lat_d,
                    lon=-lon_d if status & 0x04 else lon_d)


def _extremes(r: _Reader) -> Extremes:
    (vs_max, vc_max, v_max, vs_min, vc_min, v_min,
     ts_max, tp_max, t_max, ts_min, tp_min, t_min) = struct.unpack(
        ">BBHBBHBBBBBB", r.take(14, "extremes block"))
    return Extremes(
        max_cell_subsystem=_u8(vs_max), max_cell_no=_u8(vc_max),
        max_cell_v=_scaled(_in_range(_u16(v_max), 15000), 0.001),
        min_cell_subsystem=_u8(vs_min), min_cell_no=_u8(vc_min),
        min_cell_v=_scaled(_in_range(_u16(v_min), 15000), 0.001),
        max_temp_subsystem=_u8(ts_max), max_temp_probe=_u8(tp_max),
        max_temp_c=None if _in_range(_u8(t_max), 250) is None else t_max - 40,
        min_temp_subsystem=_u8(ts_min), min_temp_probe=_u8(tp_min),
        min_temp_c=None if _in_range(_u8(t_min), 250) is None else t_min - 40)


def _fault_list(r: _Reader, what: str) -> tuple[int, ...]:
    n = r.u8(f"{what} count")
    if n in (0xFE, 0xFF):
        return ()
    raw = r.take(4 * n, f"{what} codes")
    return tuple(int.from_bytes(raw[i:i + 4], "big") for i in range(0, len(raw), 4))


def _alarms(r: _Reader) -> Alarms:
    level = r.u8("alarm level")
    flags = r.u32("alarm flags")
    lists = [_fault_list(r, w) for w in ("battery fault", "motor fault", "engine fault", "other fault")]
    return Alarms(max_level=_in_range(_u8(level), 3), flags=flags, battery_faults=lists[0],
                  motor_faults=lists[1], engine_faults=lists[2], other_faults=lists[3])


def _skip(r: _Reader, kind: int) -> None:
    """Skip a block we do not map, computing its length from its own counts."""
    if kind == 0x02:  # drive motors: count, 12 bytes each
        r.take(12 * r.u8("drive motor count"), "drive motors")
    elif kind == 0x03:  # fuel cell: 8 bytes, probe count (2), temperatures, 10 bytes
        r.take(6, "fuel cell")
        probes = r.u16("fuel cell probe count")
        r.take((0 if probes in (0xFFFE, 0xFFFF) else probes) + 10, "fuel cell")
    elif kind == 0x04:  # engine: status, crankshaft speed, fuel rate
        r.take(5, "engine block")
    elif kind == 0x08:  # subsystem voltages: per subsystem 10 bytes + 2 per cell in frame
        for _ in range(r.u8("voltage subsystem count")):
            r.take(9, "voltage subsystem")
            r.take(2 * r.u8("cell count in frame"), "cell voltages")
    elif kind == 0x09:  # subsystem temperatures: per subsystem 1 + probe count (2) + probes
        for _ in range(r.u8("temperature subsystem count")):
            r.take(1, "temperature subsystem")
            r.take(r.u16("probe count"), "probe temperatures")
    elif kind in VENDOR_BLOCKS:
        r.take(r.u16("vendor block length"), f"vendor block 0x{kind:02X}")
    else:
        raise GbtDecodeError("unknown_block", f"information type 0x{kind:02X} at offset "
                             f"{r.pos - 1}: its length is unknown, decoding stopped")


def _realtime(r: _Reader) -> dict[str, Any]:
    out: dict[str, Any] = {"time": _time(r)}
    skipped: list[int] = []
    while r.left:
        kind = r.u8("information type")
        if kind == 0x01:
            out["vehicle"] = _vehicle(r)
        elif kind == 0x05:
            out["location"] = _location(r)
        elif kind == 0x06:
            out["extremes"] = _extremes(r)
        elif kind == 0x07:
            out["alarms"] = _alarms(r)
        else:
            _skip(r, kind)
            skipped.append(kind)
    out["skipped_blocks"] = tuple(skipped)
    return out


# ---------------------------------------------------------------- frame decode
def frame_length(buf: bytes) -> int | None:
    """Total length of the frame starting at ``buf[0]``, or None until the header is in."""
    if len(buf) < HEADER_LEN:
        return None
    return HEADER_LEN + int.from_bytes(buf[22:24], "big") + 1


def decode_frame(raw: bytes) -> Frame:
    """Decode one complete frame; raise :class:`GbtDecodeError` on anything wrong."""
    try:
        return _decode(raw)
    except GbtDecodeError:
        raise
    except Exception as exc:  # noqa: BLE001 - the contract: nothing but our own error escapes
        raise GbtDecodeError("malformed_frame", f"undecodable frame: {exc!r}") from None


def _decode(raw: bytes) -> Frame:
    if len(raw) < HEADER_LEN + 1:
        raise GbtDecodeError("truncated_frame", f"{len(raw)} bytes is shorter than a frame (25)")
    if raw[:2] not in STARTS:
        raise GbtDecodeError("bad_start", f"frame starts with {raw[:2].hex()}, not 2323 ('##') "
                             "or 2424 ('$$', 2025 edition)")
    command, flag = raw[2], raw[3]
    vin_raw, encryption = raw[4:21], raw[21]
    platform = command in (Command.PLATFORM_LOGIN, Command.PLATFORM_LOGOUT)
    vin = vin_raw.decode("ascii") if set(vin_raw) <= (PLATFORM_ID_CHARS if platform else VIN_CHARS) else None
    length = int.from_bytes(raw[22:24], "big")
    ctx: _FrameContext = {"command": command, "vin": vin, "start": raw[:2]}
    if length > MAX_DATA_LEN:
        raise GbtDecodeError("bad_length", f"data length {length} exceeds {MAX_DATA_LEN}", **ctx)
    if len(raw) != HEADER_LEN + length + 1:
        raise GbtDecodeError("bad_length", f"data length {length} does not match the frame size "
                             f"{len(raw)} (expected {HEADER_LEN + length + 1})", **ctx)
    if bcc(raw[2:-1]) != raw[-1]:
        raise GbtDecodeError("bad_checksum", f"BCC 0x{raw[-1]:02X} != computed "
                             f"0x{bcc(raw[2:-1]):02X}", **ctx)
    if raw[:2] == START_2025:
        raise GbtDecodeError("unsupported_edition", "GB/T 32960.3-2025 frame ('$$'): only the "
                             "2016 edition ('##') is decoded; answered 0x02", **ctx)
    if vin is None:
        raise GbtDecodeError("bad_vin", f"VIN {vin_raw!r} is not 17 VIN characters", **ctx)
    if encryption != ENCRYPTION_NONE:
        raise GbtDecodeError("encrypted", f"encryption flag 0x{encryption:02X}: only unencrypted "
                             "(0x01) data units are supported", **ctx)
    data = raw[24:-1]
    r = _Reader(data)
    fields: dict[str, Any] = {}
    try:
        if flag != Flag.COMMAND:
            pass  # an answer: its data unit (the echoed time, if any) is kept raw
        elif command in (Command.REALTIME, Command.REISSUED):
            fields = _realtime(r)
        elif command == Command.LOGIN:
            fields["time"] = _time(r)
            fields["login_serial"] = r.u16("login serial")
            iccid = r.take(20, "ICCID")
            fields["iccid"] = iccid.decode("ascii", errors="replace").strip("\x00 ")
            # Then subsystem count, code length and codes: not needed, length is ours to trust.
        elif command == Command.LOGOUT:
            fields["time"] = _time(r)
            fields["login_serial"] = r.u16("logout serial")
        elif command == Command.PLATFORM_LOGIN:
            fields["time"] = _time(r)
            fields["login_serial"] = r.u16("platform login serial")
            fields["platform_user"] = _ascii(r.take(PLATFORM_USER_LEN, "platform user name"))
            fields["platform_password"] = _ascii(r.take(PLATFORM_PASSWORD_LEN, "platform password"))
            r.take(1, "encryption rule")
        elif command == Command.PLATFORM_LOGOUT:
            fields["time"] = _time(r)
            fields["login_serial"] = r.u16("platform logout serial")
        elif command in (Command.HEARTBEAT, Command.TIME_SYNC):
            pass
        else:
            raise GbtDecodeError("unknown_command", f"command 0x{command:02X} is not handled")
    except GbtDecodeError as exc:
        raise GbtDecodeError(exc.reason, exc.message, **ctx) from None
    return Frame(command=command, flag=flag, vin=vin, encryption=encryption, data=data, **fields)


def _ascii(raw: bytes) -> str:
    """A fixed-width ASCII field, its NUL or space padding removed."""
    return raw.decode("ascii", errors="replace").strip("\x00 ")


# ---------------------------------------------------------------- encoder
def encode_frame(command: int, vin: str, data: bytes, flag: int = Flag.COMMAND,
                 encryption: int = ENCRYPTION_NONE, start: bytes = START) -> bytes:
    """Build a frame (used by the gateway's answers, the tests and the simulator)."""
    body = bytes([command, flag]) + vin.encode("ascii") + bytes([encryption]) + len(data).to_bytes(2, "big") + data
    return start + body + bytes([bcc(body)])


def encode_time(ts: datetime) -> bytes:
    t = ts.astimezone(CHINA)
    return bytes([t.year - 2000, t.month, t.day, t.hour, t.minute, t.second])


def vehicle_block(*, soc: int, voltage_v: float, current_a: float, mileage_km: float = 0.0,
                  speed_kmh: float = 0.0, status: int = 1, charging: int = 3, mode: int = 1,
                  dcdc: int = 1, gear: int = 0x0E, insulation_kohm: int = 5000) -> bytes:
    return b"\x01" + struct.pack(
        ">BBBHIHHBBBHBB", status, charging, mode, round(speed_kmh * 10), round(mileage_km * 10),
        round(voltage_v * 10), round((current_a + 1000) * 10), soc, dcdc, gear, insulation_kohm, 0, 0)


def location_block(lat: float, lon: float, valid: bool = True) -> bytes:
    status = (0 if valid else 1) | (0x02 if lat < 0 else 0) | (0x04 if lon < 0 else 0)
    return b"\x05" + struct.pack(">BII", status, round(abs(lon) * 1e6), round(abs(lat) * 1e6))


def extremes_block(max_cell_v: float, min_cell_v: float, max_temp_c: int, min_temp_c: int) -> bytes:
    return b"\x06" + struct.pack(">BBHBBHBBBBBB", 1, 17, round(max_cell_v * 1000), 1, 42,
                                 round(min_cell_v * 1000), 1, 3, max_temp_c + 40, 1, 9, min_temp_c + 40)


def alarm_block(level: int = 0, flags: int = 0, battery_faults: tuple[int, ...] = ()) -> bytes:
    faults = bytes([len(battery_faults)]) + b"".join(f.to_bytes(4, "big") for f in battery_faults)
    return b"\x07" + bytes([level]) + flags.to_bytes(4, "big") + faults + b"\x00\x00\x00"


def motors_block(count: int = 1) -> bytes:
    motor = struct.pack(">BBBHHBHH", 1, 1, 80, 20000 + 1500, 20000 + 300, 85, 5400, 10000 + 120)
    return b"\x02" + bytes([count]) + motor * count


def realtime_data(ts: datetime, *blocks: bytes) -> bytes:
    return encode_time(ts) + b"".join(blocks)


def login_data(ts: datetime, serial: int = 1, iccid: str = "89860012345678901234") -> bytes:
    return encode_time(ts) + serial.to_bytes(2, "big") + iccid.encode("ascii")[:20].ljust(20, b"0") + b"\x01\x00"


def platform_login_data(ts: datetime, user: str, password: str, serial: int = 1) -> bytes:
    """Platform login (0x05): time, serial, user name (12), password (20), encryption rule."""
    return (encode_time(ts) + serial.to_bytes(2, "big") + user.encode("ascii")[:PLATFORM_USER_LEN].ljust(
        PLATFORM_USER_LEN, b"\x00") + password.encode("ascii")[:PLATFORM_PASSWORD_LEN].ljust(
        PLATFORM_PASSWORD_LEN, b"\x00") + bytes([ENCRYPTION_NONE]))


# ---------------------------------------------------------------- protocol answers
def answer(frame: Frame | None, error: GbtDecodeError | None = None, *,
           flag: int = Flag.SUCCESS) -> bytes | None:
    """The platform's answer: same command and VIN, flag 0x01 success or 0x02 error.

    Only requests (flag 0xFE) are answered, and only when command and VIN are known.
    The data unit echoes the request's 6-byte time, as the standard's answers do. A
    valid frame refused by policy (not logged in, VIN not pledged) gets ``flag`` 0x02.
    A 2025-edition frame is answered in its own edition ('$$'), so its sender can tell.
    """
    if frame is not None:
        if frame.flag != Flag.COMMAND:
            return None
        return encode_frame(frame.command, frame.vin, frame.data[:6], flag=flag)
    if error is not None and error.vin is not None and error.command is not None:
        return encode_frame(error.command, error.vin, b"", flag=Flag.ERROR, start=error.start)
    return None


# ---------------------------------------------------------------- stream framing
@dataclass
class FrameBuffer:
    """Splits a TCP byte stream into frames, resynchronising on ``##`` (or the 2025
    edition's ``$$``) after garbage.

    ``feed`` returns complete frames and discarded garbage, in stream order, as
    ``("frame", bytes)`` and ``("garbage", bytes)``; partial frames wait for more bytes.
    """

    max_frame: int = HEADER_LEN + MAX_DATA_LEN + 1
    buf: bytearray = field(default_factory=bytearray)

    def feed(self, chunk: bytes) -> list[tuple[str, bytes]]:
        self.buf += chunk
        out: list[tuple[str, bytes]] = []
        while self.buf:
            start = _first_start(self.buf)
            # '###' / '$$$': the real start is the last pair (no command byte is 0x23 or 0x24).
            while start >= 0 and self.buf[start + 2:start + 3] == self.buf[start:start + 1]:
                start += 1
            if start != 0:
                # Keep a trailing '#' or '$' that may be the first half of the next start mark.
                half = self.buf.endswith(b"#") or self.buf.endswith(b"$")
                cut = start if start > 0 else (len(self.buf) - 1 if half else len(self.buf))
                if cut == 0:
                    break
                out.append(("garbage", bytes(self.buf[:cut])))
                del self.buf[:cut]
                continue
            total = frame_length(bytes(self.buf[:HEADER_LEN]))
            if total is None or len(self.buf) < total:
                break
            out.append(("frame", bytes(self.buf[:total])))
            del self.buf[:total]
        return out

    @property
    def pending(self) -> int:
        return len(self.buf)


def _first_start(buf: bytearray) -> int:
    found = [i for i in (buf.find(s) for s in STARTS) if i >= 0]
    return min(found) if found else -1


# ---------------------------------------------------------------- mapping to events
def machine_for(vin: str, vin_map: dict[str, str]) -> str:
    """The machine id of a VIN: from the map, else ``vin-<VIN>``."""
    return vin_map.get(vin) or f"vin-{vin}"


def to_event(frame: Frame, *, tenant: str, vin_map: dict[str, str] | None = None,
             recorded_at: datetime | None = None) -> BatteryTelemetry | None:
    """Map a real-time or reissued frame to battery telemetry.

    Returns None for frames that carry no telemetry (login, logout, heartbeat). Raises
    :class:`SourceError` when a data frame lacks what the contract requires (SOC,
    pack voltage and current from the vehicle block).
    """
    if not frame.is_request:
        # Answers go from a platform to a vehicle; one arriving here holds no reading.
        raise SourceError("unexpected_answer", f"answer frame (flag 0x{frame.flag:02X}) to command "
                          f"0x{frame.command:02X}: this gateway takes requests only")
    if frame.command not in (Command.REALTIME, Command.REISSUED):
        return None
    v = frame.vehicle
    if v is None or v.soc_pct is None or v.voltage_v is None or v.current_a is None:
        raise SourceError("no_battery_data", "real-time frame without a valid vehicle block "
                          "(SOC, total voltage and total current are required)")
    assert frame.time is not None
    machine_id = machine_for(frame.vin, vin_map or {})
    if not is_id(machine_id):
        raise SourceError("bad_machine_id", f"machine id {machine_id!r} from the VIN map is not a valid id")
    x, a, loc = frame.extremes, frame.alarms, frame.location
    payload: dict[str, Any] = {
        "machine_id": machine_id, "vin": frame.vin, "soc_pct": v.soc_pct,
        "pack_voltage_v": v.voltage_v, "pack_current_a": v.current_a,
        "mileage_km": v.mileage_km, "reissued": frame.command == Command.REISSUED,
        "alarm_level": (a.max_level or 0) if a else 0, "alarm_flags": a.flags if a else 0,
    }
    if x is not None:
        payload |= {"max_cell_voltage_v": x.max_cell_v, "min_cell_voltage_v": x.min_cell_v,
                    "max_temp_c": x.max_temp_c}
    if loc is not None and loc.valid:
        payload["location"] = {"lat": loc.lat, "lon": loc.lon}
    epoch = int(frame.time.astimezone(UTC).timestamp())
    return build_event(  # type: ignore[return-value]
        BatteryTelemetry, event_id=f"gbt-{frame.vin}-{epoch}", tenant=tenant,
        source="gbt32960", occurred_at=frame.time, recorded_at=recorded_at,
        payload={k: v for k, v in payload.items() if v is not None})
