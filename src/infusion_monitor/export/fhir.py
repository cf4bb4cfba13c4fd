"""``export --format fhir``: the session as a FHIR R4 Bundle of type ``collection`` (JSON).

A pure function of a ``SessionRecord``; built and validated with ``fhir.resources.R4B`` (every
resource is validated as it is constructed). The Bundle holds:

* **Patient** - the check-in's MRN (identifier type ``MR``), name and birth date.
* **Encounter** - class ``AMB``; period from the check-in marker (else the session start) to
  the discharge marker (else the session end); ``finished`` once it has an end, else
  ``in-progress``; the session uid as identifier; attending and nurse as participants.
* **Device** - the monitor feed: ``SessionRecord.equipment_id`` as identifier, the protocol's
  title as type and name.
* **Vital-sign Observations** (category ``vital-signs``, the R4 vital-signs profiles): one per
  valid HR, PR, SpO2 and RR reading, one BP panel (85354-9) per valid NIBP measurement with the
  systolic, diastolic and (when valid) mean as components. Each code carries LOINC and IEEE 11073
  MDC codings; values are UCUM quantities. ``effectiveDateTime`` is the monitor's own time when
  the protocol sent one, else the receipt time; ``issued`` is the receipt time.
* **Score Observations** (category ``survey``, our own code system): the nurse's dissociation,
  RASS and distress score for each charted minute, ``effectivePeriod`` = that minute.

Decisions (clinical honesty first):

* Device values are ``preliminary``: nobody verified them (HL7 v2 OBX-11 ``R``, which the HL7 v2
  to FHIR mapping takes to ``preliminary``). Nurse-charted scores are ``final``.
* Only ``Quality.OK`` values are exported. Artifacts, values the device marked questionable and
  demo-mode values are left out, never shown as a value (the CSV export keeps every value with
  its quality). An NIBP measurement counts only when systolic and diastolic are both valid, as
  on the minute chart; an invalid mean is left out of an otherwise valid panel.
* Interpretation ``H``/``L`` (v3-ObservationInterpretation) compares a value with the session's
  limits (``SessionRecord.limits``) by each alarm condition's own operator (``hr > hr_high``,
  ``nibp_sys >= sbp_high``...). PR is judged by the HR limits; the pre-start BP limits apply only
  before the infusion start. RASS and distress are judged by their alarm conditions too.
* Amended scores: the current value is exported with status ``amended`` and a note giving each
  earlier value, who entered it and when, and the reason; a superseded value is never exported
  as an Observation of its own. A score that an amendment removed (set to "not assessed") is
  exported with status ``entered-in-error``, its withdrawn value and the same note.
* Alarms, free-text notes and CADSS forms are not part of this Bundle.

Resource ids are UUIDs derived from the session uid, so exporting the same record twice gives
the same Bundle (apart from ``timestamp``); each entry's ``fullUrl`` is ``urn:uuid:<id>`` and
references use those URNs.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TextIO

from fhir.resources.R4B.bundle import Bundle, BundleEntry
from fhir.resources.R4B.device import Device
from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.resource import Resource

from infusion_monitor.clock import to_us
from infusion_monitor.devices.registry import PROTOCOLS
from infusion_monitor.export.record import SessionRecord
from infusion_monitor.session.minutes import MinuteRow
from infusion_monitor.session.phases import Phase
from infusion_monitor.session.scales import MINUTE_SCALES
from infusion_monitor.session.thresholds import DEFAULT_CONDITIONS, AlarmCondition
from infusion_monitor.store.charting import MinuteEntry
from infusion_monitor.vitals import NIBP, SPECS, Quality, Reading, Vital

#: ``progress(done, total)``: how far a long export has got.
Progress = Callable[[int, int], None]

LOINC = "http://loinc.org"
MDC = "urn:iso:std:iso:11073:10101"
UCUM = "http://unitsofmeasure.org"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
IDENTIFIER_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0203"
PARTICIPATION_TYPE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"

# Our own URIs. ``infusion-monitor.example`` is a placeholder domain (RFC 2606 ``.example``): the
# URIs only have to be unique and stable, nobody needs to resolve them.
_BASE = "https://infusion-monitor.example/fhir"
SCORE_SYSTEM = f"{_BASE}/CodeSystem/ketamine-session-scores"
#: Device parameters with no LOINC or MDC code (Masimo's PVI).
DEVICE_PARAMETER_SYSTEM = f"{_BASE}/CodeSystem/device-parameters"
SESSION_ID_SYSTEM = f"{_BASE}/NamingSystem/session-uid"
EQUIPMENT_ID_SYSTEM = f"{_BASE}/NamingSystem/equipment-id"
_UUID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, _BASE)

PROFILE = "http://hl7.org/fhir/StructureDefinition/"
#: The vital-signs profile of each exported parameter.
PROFILES: dict[Vital, str] = {
    Vital.HR: PROFILE + "heartrate",
    Vital.PR: PROFILE + "heartrate",
    Vital.SPO2: PROFILE + "oxygensat",
    Vital.RR: PROFILE + "resprate",
}
#: Other device parameters (PI, PVI): category vital-signs, but no R4 vital-signs profile
#: covers them, so they claim none.
OTHER_VITALS = (Vital.PI, Vital.PVI)
BP_PROFILE = PROFILE + "bp"
BP_PANEL_LOINC = ("85354-9", "Blood pressure panel with all children optional")
BP_PANEL_MDC = (150020, "MDC_PRESS_BLD_NONINV")
#: The oxygensat profile's second LOINC: SpO2 by pulse oximetry.
SPO2_PULSE_OX_LOINC = ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry")

_LOINC_DISPLAY = {
    "8867-4": "Heart rate",
    "2708-6": "Oxygen saturation in Arterial blood",
    "8480-6": "Systolic blood pressure",
    "8462-4": "Diastolic blood pressure",
    "8478-0": "Mean blood pressure",
    "9279-1": "Respiratory rate",
    "61006-3": "Perfusion index Tissue by Pulse oximetry",
}
_UCUM_DISPLAY = {"/min": "/min", "%": "%", "mm[Hg]": "mmHg"}

#: The monitor behind each protocol, for the Device resource.
_MANUFACTURER = {
    "datex-s5": "GE Healthcare (Datex-Ohmeda)",
    "intellivue": "Philips",
    "masimo": "Masimo",
    "nonin": "Nonin Medical",
}

#: Device data nobody has verified (HL7 v2 OBX-11 "R").
DEVICE_STATUS = "preliminary"


# -- small builders ---------------------------------------------------------------------------
def _dt(t: datetime) -> str:
    """A FHIR dateTime/instant in UTC, keeping the stored microseconds."""
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _decimal(value: float) -> Decimal:
    """78 not 78.0; 97.5 stays 97.5 (the shortest text of the stored float)."""
    return Decimal(int(value)) if float(value).is_integer() else Decimal(repr(float(value)))


def _coding(system: str, code: str | int, display: str | None = None) -> dict[str, Any]:
    c: dict[str, Any] = {"system": system, "code": str(code)}
    if display:
        c["display"] = display
    return c


def _vital_code(vital: Vital) -> dict[str, Any]:
    spec = SPECS[vital]
    codings = []
    if spec.loinc:
        codings.append(_coding(LOINC, spec.loinc, _LOINC_DISPLAY.get(spec.loinc)))
    if vital is Vital.SPO2:
        codings.append(_coding(LOINC, *SPO2_PULSE_OX_LOINC))
    if spec.mdc_code:
        codings.append(_coding(MDC, spec.mdc_code, spec.mdc_name))
    if not codings:  # no standard code exists: ours, so the value is never sent uncoded
        codings.append(_coding(DEVICE_PARAMETER_SYSTEM, vital.value, spec.label))
    return {"coding": codings, "text": spec.label}


def _quantity(vital: Vital, value: float) -> dict[str, Any]:
    ucum = SPECS[vital].ucum
    return {"value": _decimal(value), "unit": _UCUM_DISPLAY.get(ucum, ucum), "system": UCUM,
            "code": ucum}


def _category(code: str, display: str) -> list[dict[str, Any]]:
    return [{"coding": [_coding(OBSERVATION_CATEGORY, code, display)], "text": display}]


def _interpretation(code: str) -> list[dict[str, Any]]:
    display = {"H": "High", "L": "Low"}[code]
    return [{"coding": [_coding(INTERPRETATION, code, display)], "text": display}]


# -- interpretation against the session's limits ------------------------------------------------
class _Judge:
    """H/L for a value of a parameter at a time, by the alarm conditions and the session limits."""

    def __init__(self, limits: dict[str, float], infusion_start: datetime | None) -> None:
        self.limits = limits
        self.infusion_start = infusion_start
        self.by_parameter: dict[str, list[AlarmCondition]] = {}
        for c in DEFAULT_CONDITIONS:
            if c.parameter is not None and c.op and c.name in limits:
                self.by_parameter.setdefault(c.parameter, []).append(c)

    def flag(self, parameter: str, value: float, t: datetime) -> str | None:
        if parameter == Vital.PR:
            parameter = Vital.HR.value  # a pulse rate is a heart rate: the HR limits judge it
        before_start = self.infusion_start is None or t < self.infusion_start
        for c in self.by_parameter.get(parameter, ()):
            if c.before_infusion_only and not before_start:
                continue
            limit = self.limits[c.name]
            breached = {
                "<": value < limit, "<=": value <= limit, ">": value > limit, ">=": value >= limit,
            }[c.op]
            if breached:
                return "H" if c.op.startswith(">") else "L"
        return None


# -- the Bundle -------------------------------------------------------------------------------
class _Builder:
    def __init__(self, record: SessionRecord) -> None:
        self.record = record
        self.entries: list[BundleEntry] = []
        infusion = _marker_time(record, Phase.INFUSION)
        self.judge = _Judge(record.limits, infusion)

    def uid(self, key: str) -> str:
        return str(uuid.uuid5(_UUID_NAMESPACE, f"{self.record.info.uid}/{key}"))

    def add(self, resource: Resource) -> str:
        """Add a resource (its id a UUID); returns the ``urn:uuid:`` to reference it by."""
        url = f"urn:uuid:{resource.id}"
        self.entries.append(BundleEntry(fullUrl=url, resource=resource))
        return url

    def build(self, progress: Progress | None = None) -> Bundle:
        r = self.record
        self.patient = self.add(self.patient_resource())
        self.encounter = self.add(self.encounter_resource())
        self.device = self.add(self.device_resource())
        total = len(r.readings)
        for i, reading in enumerate(r.readings):
            exported = reading.vital in PROFILES or reading.vital in OTHER_VITALS
            if exported and reading.quality is Quality.OK:
                self.add(self.vital_observation(f"reading/{i}", reading))
            if progress is not None and i % 200 == 0:
                progress(i, total)
        for parts in nibp_measurements(r.readings):
            self.add(self.bp_observation(f"nibp/{to_us(parts[Vital.NIBP_SYS].time)}", parts))
        for row in r.minutes:
            for obs in self.score_observations(row):
                self.add(obs)
        return Bundle(type="collection", timestamp=_dt(r.exported_at), entry=self.entries)

    # -- Patient, Encounter, Device ---------------------------------------------------------------
    def patient_resource(self) -> Patient:
        ci = self.record.check_in
        mrn = ci.patient_id if ci is not None else self.record.info.patient_id
        data: dict[str, Any] = {"id": self.uid("patient")}
        if mrn:
            # The clinic's MRN namespace is not known here: the type says what it is.
            data["identifier"] = [{
                "use": "usual", "value": mrn,
                "type": {"coding": [_coding(IDENTIFIER_TYPE, "MR", "Medical record number")]},
            }]
        if ci is not None:
            if ci.patient_name:
                data["name"] = [{"text": ci.patient_name}]
            if ci.birth_date is not None:
                data["birthDate"] = ci.birth_date.isoformat()
        return Patient(**data)

    def encounter_resource(self) -> Encounter:
        r = self.record
        start = _marker_time(r, Phase.CHECK_IN) or r.info.started
        end = _marker_time(r, Phase.DISCHARGED) or r.info.ended
        period = {"start": _dt(start)}
        if end is not None:
            period["end"] = _dt(end)
        data: dict[str, Any] = {
            "id": self.uid("encounter"),
            "identifier": [{"system": SESSION_ID_SYSTEM, "value": r.info.uid}],
            "status": "finished" if end is not None else "in-progress",
            "class": _coding(ACT_CODE, "AMB", "ambulatory"),
            "subject": {"reference": self.patient},
            "period": period,
        }
        ci = r.check_in
        if ci is not None:
            people = [(ci.attending, "ATND", "attender"), (ci.nurse, "PART", "Participation")]
            data["participant"] = [
                {"type": [{"coding": [_coding(PARTICIPATION_TYPE, code, display)]}],
                 "individual": {"display": name}}
                for name, code, display in people if name
            ]
        return Encounter.model_validate({"resourceType": "Encounter", **data})

    def device_resource(self) -> Device:
        info = self.record.info
        protocol = PROTOCOLS.get(info.protocol)
        title = protocol.title if protocol is not None else info.protocol
        data: dict[str, Any] = {
            "id": self.uid("device"),
            "identifier": [{"system": EQUIPMENT_ID_SYSTEM, "value": self.record.equipment_id}],
            "deviceName": [{"name": title, "type": "user-friendly-name"}],
            "type": {"text": f"Patient monitor ({title})"},
            "patient": {"reference": self.patient},
        }
        if info.protocol in _MANUFACTURER:
            data["manufacturer"] = _MANUFACTURER[info.protocol]
        return Device(**data)

    # -- vital signs ---------------------------------------------------------------------------
    def _vital_common(self, key: str, profile: str | None, first: Reading) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.uid(key),
            **({"meta": {"profile": [profile]}} if profile else {}),
            "status": DEVICE_STATUS,
            "category": _category("vital-signs", "Vital Signs"),
            "subject": {"reference": self.patient},
            "encounter": {"reference": self.encounter},
            "device": {"reference": self.device},
            "effectiveDateTime": _dt(first.t_device or first.time),
        }
        if first.t_received is not None:
            data["issued"] = _dt(first.t_received)
        return data

    def vital_observation(self, key: str, reading: Reading) -> Observation:
        data = self._vital_common(key, PROFILES.get(reading.vital), reading)
        data["code"] = _vital_code(reading.vital)
        data["valueQuantity"] = _quantity(reading.vital, reading.value)
        flag = self.judge.flag(reading.vital.value, reading.value, reading.time)
        if flag:
            data["interpretation"] = _interpretation(flag)
        return Observation(**data)

    def bp_observation(self, key: str, parts: dict[Vital, Reading]) -> Observation:
        data = self._vital_common(key, BP_PROFILE, parts[Vital.NIBP_SYS])
        data["code"] = {
            "coding": [_coding(LOINC, *BP_PANEL_LOINC), _coding(MDC, *BP_PANEL_MDC)],
            "text": "NIBP",
        }
        components = []
        for vital in NIBP:
            reading = parts.get(vital)
            if reading is None:
                continue
            component: dict[str, Any] = {
                "code": _vital_code(vital), "valueQuantity": _quantity(vital, reading.value),
            }
            flag = self.judge.flag(vital.value, reading.value, reading.time)
            if flag:
                component["interpretation"] = _interpretation(flag)
            components.append(component)
        data["component"] = components
        return Observation(**data)

    # -- the nurse's scores --------------------------------------------------------------------
    def score_observations(self, row: MinuteRow) -> Iterable[Observation]:
        if row.entry is None:
            return
        versions = (*row.history, row.entry)
        for scale in MINUTE_SCALES:
            values = [getattr(v, scale.name) for v in versions]
            if all(v is None for v in values):
                continue
            key = f"minute/{row.minute}/{scale.name}"
            current = values[-1]
            if current is None:  # an amendment withdrew the score
                status = "entered-in-error"
                origin = max(i for i, v in enumerate(values) if v is not None)
                value = values[origin]
            else:
                origin = len(values) - 1
                while origin > 0 and values[origin - 1] == current:
                    origin -= 1
                status = "amended" if any(v != current for v in values[:origin]) else "final"
                value = current
            by = versions[origin]
            data: dict[str, Any] = {
                "id": self.uid(key),
                "status": status,
                "category": _category("survey", "Survey"),
                "code": {"coding": [_coding(SCORE_SYSTEM, scale.name, scale.title)],
                         "text": scale.title},
                "subject": {"reference": self.patient},
                "encounter": {"reference": self.encounter},
                "effectivePeriod": {"start": _dt(row.vitals.start), "end": _dt(row.vitals.end)},
                "issued": _dt(by.entered_at),
                "performer": [{"display": by.entered_by}],
                "valueInteger": value,
            }
            if status != "final":
                data["note"] = [_amendment_note(scale.name, versions, row.entry)]
            if status != "entered-in-error":
                flag = self.judge.flag(scale.name, value, row.vitals.start)
                if flag:
                    data["interpretation"] = _interpretation(flag)
            yield Observation(**data)


def _amendment_note(score: str, versions: tuple[MinuteEntry, ...],
                    latest: MinuteEntry) -> dict[str, Any]:
    def shown(v: MinuteEntry) -> str:
        value = getattr(v, score)
        return "not assessed" if value is None else str(value)

    history = "; ".join(
        f"{shown(v)} (entered {_dt(v.entered_at)} by {v.entered_by}"
        + (f", reason: {v.reason}" if v.reason else "") + ")"
        for v in versions
    )
    return {"authorString": latest.entered_by, "time": _dt(latest.entered_at),
            "text": f"Amended. Versions, oldest first: {history}"}


def _marker_time(record: SessionRecord, phase: Phase) -> datetime | None:
    """When the phase began (its marker in force, not a voided one)."""
    times = [m.t for m in record.markers if m.phase is phase and not m.voided]
    return times[-1] if times else None


def nibp_measurements(readings: Iterable[Reading]) -> list[dict[Vital, Reading]]:
    """Every valid NIBP measurement, oldest first, as {vital: reading}: sys, dia and mean share a
    (receipt) time; sys and dia must both be OK; a mean that is not OK is dropped."""
    by_time: dict[int, dict[Vital, Reading]] = {}
    for r in readings:
        if r.vital in NIBP:
            by_time.setdefault(to_us(r.time), {})[r.vital] = r
    out = []
    for t in sorted(by_time):
        parts = by_time[t]
        sys_, dia = parts.get(Vital.NIBP_SYS), parts.get(Vital.NIBP_DIA)
        if sys_ is None or dia is None:
            continue
        if sys_.quality is not Quality.OK or dia.quality is not Quality.OK:
            continue
        out.append({v: r for v, r in parts.items() if r.quality is Quality.OK})
    return out


def build_bundle(record: SessionRecord, progress: Progress | None = None) -> Bundle:
    """The session as a validated FHIR R4 ``collection`` Bundle.

    ``progress(done, total)`` is called now and then while the readings are converted (the
    slow part: every resource is validated as it is built).
    """
    return _Builder(record).build(progress)


def write_fhir(record: SessionRecord, out: TextIO, progress: Progress | None = None) -> int:
    """Write the Bundle as JSON; returns how many resources it holds.

    Entries are serialised one at a time: one ``model_dump_json`` of the whole Bundle holds the
    GIL for most of a second, freezing the window of a GUI export running on a worker thread.
    """
    bundle = build_bundle(record, progress)
    entries = bundle.entry or ()
    head = bundle.model_dump_json(indent=2, exclude={"entry"})
    out.write(head[:-2] + ',\n  "entry": [')  # head ends in "\n}"
    for i, entry in enumerate(entries):
        out.write(",\n    " if i else "\n    ")
        out.write(entry.model_dump_json(indent=2).replace("\n", "\n    "))
        if progress is not None and i % 200 == 0:
            progress(i, len(entries))
    out.write("\n  ]\n}\n")
    return len(entries)
