"""``export --format hl7``: HL7 v2.6 ORU^R01 messages as IHE PCD-01 profiles them.

A pure function of a ``SessionRecord``. One message per session, or (``per_minute``) one per
minute of the infusion clock (window k = ``[start + 60k, start + 60(k+1))`` from the infusion
start, negative before it; empty minutes send nothing).

Message: ``MSH`` (v2.6, ``ORU^R01^ORU_R01``, MSH-21 the PCD-01 profile OID), ``PID`` from the
current check-in (PID-3 patient ID, type ``PI``; PID-5 name, "Family, Given" split, any other
form whole in the family name; PID-7 birth date; with no check-in, the session's patient ID, or
the session UID as a visit number ``VN``, and a name of type ``U``: nothing is invented),
``PV1`` (outpatient, PV1-19 the session UID), then ORDER_OBSERVATION groups in time order
(at the same time, device data before scores):

* Device data: one ``OBR`` (OBR-4 ``182777000^monitoring of patient^SNOMED-CT``) per
  observation time, OBR-7 = OBR-8 = that time. HL7 and PCD-01 want OBX-3 + OBX-4 unique within
  an OBR, so a session's 900 heart rates cannot share one OBR; each OBR is the snapshot PCD-01
  would send in real time. Its first OBX is the MDS header (``69965``, OBX-11 ``X``, no value);
  then one OBX per valid reading: OBX-3 ``code^MDC_NAME^MDC``, OBX-4 ``1.0.0.<metric>`` (flat
  MDS, no VMD/channel), OBX-6 the MDC unit with the UCUM unit as the alternate
  (``264864^MDC_DIM_BEAT_PER_MIN^MDC^/min^/min^UCUM``), OBX-8 the flag, OBX-11 ``R`` (device
  data nobody verified), OBX-14 the device time if the monitor sent one, else the receipt time,
  OBX-17 ``AMEAS^auto-measurement^MDC``, OBX-18 the equipment ID. NIBP is a compound: a parent
  OBX ``150020^MDC_PRESS_BLD_NONINV^MDC`` (OBX-11 ``X``, no value) at ``1.0.0.5`` with sys, dia
  and mean at ``1.0.0.5.1`` .. ``.3``.
* Nurse scores: one ``OBR`` (OBR-4 ``KETASSESS^...^99KET``) per charted minute, OBR-7/8 the
  minute's bounds; one OBX per assessed score under the local code system ``99KET``
  (``DISSOC``, ``RASS``, ``DISTRESS``), no unit, OBX-14 the minute's start, OBX-16 who entered
  the current version, OBX-19 when. OBX-11 ``F`` (entered by a nurse: verified), or ``C`` when
  an earlier version of that entry had another value for this score; the correction's who, when,
  why and the replaced value go in an NTE under the OBX. A score not assessed sends no OBX.

Only ``Quality.OK`` readings are sent. Artifacts, values the device marked questionable and
demo-mode values are left out: HL7 has no "artifact" flag, and a number in OBX-5 is read as a
measurement, so leaving them out is the only way not to present them as valid values.

OBX-8 against ``record.limits`` (the limits in force for the session): a breached condition
gives ``L``/``H`` by its direction, ``LL``/``HH`` for a high-priority (severe) one; the pulse
rate is judged by the HR limits, RASS and distress by their conditions (deep sedation ``LL``,
agitation ``H``, distress ``H``). Pre-start BP conditions apply only before the infusion, so
they flag nothing here. Text (names, notes, IDs) is escaped by ``escape``
(``\\F\\ \\S\\ \\T\\ \\R\\ \\E\\``, line breaks as ``\\X0D\\``/``\\X0A\\``), so a literal
``\\S\\`` in a note stays text.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import TextIO

from infusion_monitor.clock import iso_z
from infusion_monitor.export.record import SessionRecord
from infusion_monitor.session.minutes import MinuteRow
from infusion_monitor.session.thresholds import DEFAULT_CONDITIONS, Priority
from infusion_monitor.store.charting import MinuteEntry
from infusion_monitor.vitals import NIBP, SPECS, Quality, Reading, Vital

VERSION = "2.6"
PROFILE_OID = "1.3.6.1.4.1.19376.1.6.1.1.1"
MSH_21 = f"IHE_PCD_001^IHE PCD^{PROFILE_OID}^ISO"
SENDING_APPLICATION = "INFUSION_MONITOR"
LOCAL_SYSTEM = "99KET"
MONITORING = "182777000^monitoring of patient^SNOMED-CT"
ASSESSMENT = f"KETASSESS^Ketamine infusion nursing assessment^{LOCAL_SYSTEM}"
MDS = "69965^MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS^MDC"
MDS_SUB_ID = "1.0.0.0"
NIBP_PANEL = "150020^MDC_PRESS_BLD_NONINV^MDC"
NIBP_SUB_ID = "1.0.0.5"
AUTO_MEASUREMENT = "AMEAS^auto-measurement^MDC"

#: MDC unit (code, name) per vital; the UCUM unit (``SPECS[v].ucum``) is the alternate.
MDC_UNITS: dict[Vital, tuple[int, str]] = {
    Vital.HR: (264864, "MDC_DIM_BEAT_PER_MIN"),
    Vital.PR: (264864, "MDC_DIM_BEAT_PER_MIN"),
    Vital.SPO2: (262688, "MDC_DIM_PERCENT"),
    Vital.NIBP_SYS: (266016, "MDC_DIM_MMHG"),
    Vital.NIBP_DIA: (266016, "MDC_DIM_MMHG"),
    Vital.NIBP_MEAN: (266016, "MDC_DIM_MMHG"),
    Vital.RR: (264928, "MDC_DIM_RESP_PER_MIN"),
    Vital.PI: (262688, "MDC_DIM_PERCENT"),
    Vital.PVI: (262688, "MDC_DIM_PERCENT"),
}

#: OBX-4 per vital: MDS 1, no VMD or channel level, a fixed metric number.
SUB_IDS: dict[Vital, str] = {
    Vital.HR: "1.0.0.1", Vital.PR: "1.0.0.2", Vital.SPO2: "1.0.0.3", Vital.RR: "1.0.0.4",
    Vital.NIBP_SYS: f"{NIBP_SUB_ID}.1", Vital.NIBP_DIA: f"{NIBP_SUB_ID}.2",
    Vital.NIBP_MEAN: f"{NIBP_SUB_ID}.3", Vital.PI: "1.0.0.6", Vital.PVI: "1.0.0.7",
}

#: (MinuteEntry attribute, local code, text, condition parameter) for the nurse's scores.
SCORES: tuple[tuple[str, str, str, str | None], ...] = (
    ("dissociation", "DISSOC", "Dissociation depth", None),
    ("rass", "RASS", "Richmond Agitation-Sedation Scale", "rass"),
    ("distress", "DISTRESS", "Distress", "distress"),
)

# -- plain values -----------------------------------------------------------------------------
def hl7_time(t: datetime) -> str:
    """HL7 DTM in UTC: ``YYYYMMDDHHMMSS[.FFFF]+0000`` (to 100 microseconds, the DTM limit)."""
    t = t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
    frac = f".{t.microsecond // 100:04d}" if t.microsecond // 100 else ""
    return f"{t:%Y%m%d%H%M%S}{frac}+0000"


def hl7_date(d: date) -> str:
    return f"{d:%Y%m%d}"


def hl7_number(value: float) -> str:
    """NM text: 78 not 78.0, else the shortest exact decimal (never an exponent)."""
    if not math.isfinite(value):
        raise ValueError(f"not a number HL7 can carry: {value!r}")
    if float(value).is_integer():
        return str(int(value))
    text = repr(float(value))
    return text if "e" not in text else f"{value:.10f}".rstrip("0").rstrip(".")


def observation_time(r: Reading) -> datetime:
    """OBX-14: when the monitor says it measured, else when the reading arrived."""
    t = r.t_device or r.t_received
    if t is None:
        raise ValueError("reading has no time")
    return t


def abnormal_flag(parameter: str, value: float, limits: Mapping[str, float]) -> str:
    """OBX-8 for ``value`` of ``parameter`` ("hr", "rass", ...) against the session's limits.

    ``""`` when no condition is breached; ``L``/``H`` by the condition's direction, doubled for a
    high-priority one; the most severe breached condition wins.
    """
    flag = ""
    for cond in DEFAULT_CONDITIONS:
        if cond.parameter != parameter or cond.before_infusion_only or cond.name not in limits:
            continue
        if not replace(cond, limit=limits[cond.name]).breached(value):
            continue
        letter = "L" if cond.op in ("<", "<=") else "H"
        this = letter * 2 if cond.priority is Priority.HIGH else letter
        if len(this) > len(flag):
            flag = this
    return flag


def _vital_parameter(v: Vital) -> str:
    return Vital.HR.value if v is Vital.PR else v.value


# -- the content, before HL7 encoding ---------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Obx:
    """One OBX, as plain values (ER7 for coded fields, raw text for ``observer``/notes)."""

    code: str  # OBX-3
    status: str  # OBX-11
    value_type: str = ""  # OBX-2
    sub_id: str = ""  # OBX-4
    value: str = ""  # OBX-5
    units: str = ""  # OBX-6
    flag: str = ""  # OBX-8
    time: datetime | None = None  # OBX-14
    observer: str = ""  # OBX-16 (a name, escaped when encoded)
    method: str = ""  # OBX-17
    equipment: str = ""  # OBX-18 (escaped when encoded)
    analysis_time: datetime | None = None  # OBX-19
    notes: tuple[str, ...] = ()  # NTE-3 under the OBX


@dataclass(frozen=True, slots=True)
class Order:
    """One ORDER_OBSERVATION group: an OBR and its OBXs."""

    service: str  # OBR-4
    start: datetime  # OBR-7
    end: datetime  # OBR-8
    observations: tuple[Obx, ...] = field(default_factory=tuple)


def observation_code(v: Vital) -> str:
    """OBX-3: the MDC code, or ours (``99KET``) for a vital with none (Masimo's PVI)."""
    spec = SPECS[v]
    if spec.mdc_code:
        return f"{spec.mdc_code}^{spec.mdc_name}^MDC"
    return f"{v.value.upper()}^{spec.label}^{LOCAL_SYSTEM}"


def _reading_obx(r: Reading, record: SessionRecord) -> Obx:
    spec = SPECS[r.vital]
    unit_code, unit_name = MDC_UNITS[r.vital]
    return Obx(
        code=observation_code(r.vital), status="R", value_type="NM",
        sub_id=SUB_IDS[r.vital], value=hl7_number(r.value),
        units=f"{unit_code}^{unit_name}^MDC^{spec.ucum}^{spec.ucum}^UCUM",
        flag=abnormal_flag(_vital_parameter(r.vital), r.value, record.limits),
        time=observation_time(r), method=AUTO_MEASUREMENT, equipment=record.equipment_id,
    )


def _snapshots(readings: Sequence[Reading]) -> list[tuple[datetime, dict[Vital, Reading]]]:
    """Valid readings grouped by observation time; a repeated vital opens a second snapshot."""
    out: list[tuple[datetime, dict[Vital, Reading]]] = []
    open_at: dict[datetime, list[dict[Vital, Reading]]] = {}
    for r in sorted((r for r in readings if r.quality is Quality.OK), key=observation_time):
        t = observation_time(r)
        groups = open_at.setdefault(t, [])
        target = next((g for g in groups if r.vital not in g), None)
        if target is None:
            target = {}
            groups.append(target)
            out.append((t, target))
        target[r.vital] = r
    return out


_ORDER = (Vital.HR, Vital.PR, Vital.SPO2, Vital.RR, Vital.PI, Vital.PVI)


def device_orders(record: SessionRecord) -> list[Order]:
    """One OBR per snapshot of valid device readings, in time order."""
    orders = []
    for t, snap in _snapshots(record.readings):
        obs = [Obx(code=MDS, status="X", sub_id=MDS_SUB_ID, time=t,
                   equipment=record.equipment_id)]
        obs += [_reading_obx(snap[v], record) for v in _ORDER if v in snap]
        if any(v in snap for v in NIBP):
            obs.append(Obx(code=NIBP_PANEL, status="X", sub_id=NIBP_SUB_ID, time=t,
                           equipment=record.equipment_id))
            obs += [_reading_obx(snap[v], record) for v in NIBP if v in snap]
        orders.append(Order(MONITORING, t, t, tuple(obs)))
    return orders


def _score_text(v: int | None) -> str:
    return "not assessed" if v is None else str(v)


def _score_obx(row: MinuteRow, entry: MinuteEntry, attr: str, code: str, text: str,
               parameter: str | None, limits: Mapping[str, float]) -> Obx | None:
    value = getattr(entry, attr)
    if value is None:
        return None
    replaced = [old for old in row.history if getattr(old, attr) != value]
    notes = tuple(
        f"Corrected by {entry.entered_by} at {iso_z(entry.entered_at)}: was "
        f"{_score_text(getattr(old, attr))} (entered by {old.entered_by} at "
        f"{iso_z(old.entered_at)}); reason: {entry.reason or 'none given'}"
        for old in replaced
    )
    return Obx(
        code=f"{code}^{text}^{LOCAL_SYSTEM}", status="C" if replaced else "F", value_type="NM",
        value=str(int(value)),
        flag="" if parameter is None else abnormal_flag(parameter, value, limits),
        time=row.vitals.start, observer=entry.entered_by, analysis_time=entry.entered_at,
        notes=notes,
    )


def score_orders(record: SessionRecord) -> list[Order]:
    """One OBR per charted minute with at least one assessed score."""
    orders = []
    for row in record.minutes:
        if row.entry is None:
            continue
        obs = [
            o for attr, code, text, parameter in SCORES
            if (o := _score_obx(row, row.entry, attr, code, text, parameter, record.limits))
        ]
        if obs:
            orders.append(Order(ASSESSMENT, row.vitals.start, row.vitals.end, tuple(obs)))
    return orders


def _anchor(record: SessionRecord) -> datetime:
    """Where minute 0 begins: the infusion start, else the session start."""
    return record.minutes[0].vitals.start if record.minutes else record.info.started


def _minute_index(anchor: datetime, t: datetime) -> int:
    return math.floor((t - anchor) / timedelta(minutes=1))


# -- encoding ---------------------------------------------------------------------------------
# ER7 is written directly: hl7apy's object model re-parses every assigned field and took ~11 s
# for a 75-minute session. The tests still validate every message with hl7apy in strict mode
# (ORU_R01 groups) and parse it back with python-hl7, so the library stays the judge.
_ESCAPES = str.maketrans({
    "\\": "\\E\\", "|": "\\F\\", "^": "\\S\\", "&": "\\T\\", "~": "\\R\\",
    "\r": "\\X0D\\", "\n": "\\X0A\\",
})


def escape(text: str) -> str:
    """Text as an ER7 leaf: delimiters and the escape character as HL7 escape sequences."""
    return text.translate(_ESCAPES)


def _segment(name: str, fields: Mapping[int, str]) -> str:
    """``name|f1|f2|...`` from a sparse {field number: ER7 text}; trailing empties dropped."""
    last = max((n for n, v in fields.items() if v), default=0)
    return "|".join([name, *(fields.get(n, "") for n in range(1, last + 1))])


def _obx_segments(set_id: int, o: Obx) -> list[str]:
    obx = _segment("OBX", {
        1: str(set_id), 2: o.value_type, 3: o.code, 4: o.sub_id, 5: o.value, 6: o.units,
        8: o.flag, 11: o.status,
        14: hl7_time(o.time) if o.time is not None else "",
        16: f"^{escape(o.observer)}" if o.observer else "",
        17: o.method,
        18: escape(o.equipment),
        19: hl7_time(o.analysis_time) if o.analysis_time is not None else "",
    })
    notes = [_segment("NTE", {1: str(i), 3: escape(note)})
             for i, note in enumerate(o.notes, start=1)]
    return [obx, *notes]


def _patient_segments(record: SessionRecord) -> list[str]:
    ci = record.check_in
    patient_id = ci.patient_id if ci is not None else record.info.patient_id
    if patient_id:
        pid_3 = f"{escape(patient_id)}^^^^PI"
    else:  # PID-3 is required: without a patient ID, say which visit (session) this is
        pid_3 = f"{escape(record.info.uid)}^^^{SENDING_APPLICATION}^VN"
    if ci is not None and ci.patient_name.strip():
        # "Family, Given" is split; any other form is kept whole as the family name, since
        # guessing which word is the surname would change the patient's name.
        family, _, given = ci.patient_name.partition(",")
        pid_5 = escape(family.strip())
        if given.strip():
            pid_5 += f"^{escape(given.strip())}"
    else:  # PID-5 is required: no name was charted, so none is invented (type U, unspecified)
        pid_5 = "^^^^^^U"
    pid_7 = hl7_date(ci.birth_date) if ci is not None and ci.birth_date is not None else ""
    return [
        _segment("PID", {1: "1", 3: pid_3, 5: pid_5, 7: pid_7}),
        _segment("PV1", {1: "1", 2: "O", 19: escape(record.info.uid)}),
    ]


def _message(record: SessionRecord, control_id: str, orders: Sequence[Order],
             first_order: int) -> str:
    msh = "|".join([
        "MSH", "^~\\&", SENDING_APPLICATION, escape(record.info.workstation_id), "", "",
        hl7_time(record.exported_at), "", "ORU^R01^ORU_R01", escape(control_id), "P", VERSION,
        "", "", "NE", "AL", "", "", "", "", MSH_21,
    ])
    segments = [msh, *_patient_segments(record)]
    for n, order in enumerate(orders, start=1):
        segments.append(_segment("OBR", {
            1: str(n),
            3: f"{escape(f'{record.info.uid}-{first_order + n - 1}')}^{SENDING_APPLICATION}",
            4: order.service, 7: hl7_time(order.start), 8: hl7_time(order.end),
        }))
        for i, o in enumerate(order.observations, start=1):
            segments += _obx_segments(i, o)
    return "\r".join(segments)


def orders_of(record: SessionRecord) -> list[Order]:
    """Every ORDER_OBSERVATION of the session, in time order (device before scores at a tie)."""
    device, scores = device_orders(record), score_orders(record)
    both = [(o.start, 0, i, o) for i, o in enumerate(device)]
    both += [(o.start, 1, i, o) for i, o in enumerate(scores)]
    return [o for *_, o in sorted(both, key=lambda x: x[:3])]


def build_oru(record: SessionRecord, *, per_minute: bool = False) -> list[str]:
    """The session as ORU^R01 messages (ER7, segments separated by ``\\r``)."""
    orders = orders_of(record)
    if not per_minute:
        if not orders:  # ORU_R01 needs an OBR: the monitoring period, with nothing in it
            end = record.info.ended or record.exported_at
            orders = [Order(MONITORING, record.info.started, end)]
        return [_message(record, f"{record.info.uid}-1", orders, 1)]
    anchor = _anchor(record)
    by_minute: dict[int, list[Order]] = {}
    for o in orders:
        by_minute.setdefault(_minute_index(anchor, o.start), []).append(o)
    messages, first = [], 1
    for n, k in enumerate(sorted(by_minute), start=1):
        messages.append(_message(record, f"{record.info.uid}-{n}", by_minute[k], first))
        first += len(by_minute[k])
    return messages


def write_hl7(record: SessionRecord, out: TextIO, per_minute: bool = False) -> int:
    """Write the messages, each segment ended by ``\\r``; returns how many messages."""
    messages = build_oru(record, per_minute=per_minute)
    for msg in messages:
        out.write(msg + "\r")
    return len(messages)
