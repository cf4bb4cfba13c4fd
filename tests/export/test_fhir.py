"""FHIR export: a valid R4 collection Bundle whose codes, units and values match the database."""

from __future__ import annotations

import io
import json
from collections import Counter
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle

from infusion_monitor.cli import main
from infusion_monitor.clock import to_us
from infusion_monitor.export.fhir import (
    DEVICE_PARAMETER_SYSTEM,
    INTERPRETATION,
    LOINC,
    MDC,
    SCORE_SYSTEM,
    UCUM,
    build_bundle,
    write_fhir,
)
from infusion_monitor.export.record import SessionRecord, load_session_record
from infusion_monitor.session.lifecycle import ChartMarker
from infusion_monitor.session.minutes import MinuteRow, MinuteVitals
from infusion_monitor.session.phases import Phase
from infusion_monitor.session.thresholds import ThresholdProfile
from infusion_monitor.store.charting import ChartStore, CheckIn, MinuteEntry, PhaseMarker, latest
from infusion_monitor.store.repository import SessionInfo
from infusion_monitor.vitals import NIBP, SPECS, Quality, Reading, Vital

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DISCHARGED = T0 + timedelta(hours=1)
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
PROFILE = "http://hl7.org/fhir/StructureDefinition/"
MDC_TO_VITAL = {str(s.mdc_code): v for v, s in SPECS.items()}
# fhir.resources checks structure and types, not value sets: the statuses are checked here.
OBSERVATION_STATUSES = {"registered", "preliminary", "final", "amended", "corrected",
                        "cancelled", "entered-in-error", "unknown"}
ENCOUNTER_STATUSES = {"planned", "arrived", "triaged", "in-progress", "onleave", "finished",
                      "cancelled", "entered-in-error", "unknown"}


# -- helpers ----------------------------------------------------------------------------------
def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def marker(phase: Phase, seconds: float, i: int) -> ChartMarker:
    m = PhaseMarker(i, 1, phase, at(seconds), "{}", False, at(seconds), "nurse.b")
    return ChartMarker(phase, m.t, m)


def entry(i: int, minute: int, scores: tuple[int | None, int | None, int | None], seconds: float,
          by: str = "nurse.b", amends: int | None = None, reason: str | None = None
          ) -> MinuteEntry:
    return MinuteEntry(i, 1, minute, *scores, at(seconds), by, amends, reason)


def row(minute: int, *versions: MinuteEntry) -> MinuteRow:
    start = at(60 + 60 * minute)  # the infusion starts at T0 + 60 s
    vitals = MinuteVitals(minute, start, start + timedelta(minutes=1), None, None, None, None,
                          None, None, None, 0, True)
    return MinuteRow(vitals, versions[-1] if versions else None, versions[:-1])


def make_record(readings: list[Reading], minutes: tuple[MinuteRow, ...] = (), *,
                check_in: bool = True, ended: datetime | None = DISCHARGED,
                limits: dict[str, float] | None = None) -> SessionRecord:
    info = SessionInfo(1, "0d9c-uid", "ws-1", "MRN-9", "gui", "datex-s5", "/dev/ttyUSB0", T0,
                       ended, None, len(readings), 0)
    ci = CheckIn(1, 1, "MRN-9", "Pat Example", date(1975, 4, 1), 70, 0.5, 40, "Dr A", "N B",
                 T0, "nurse.b") if check_in else None
    markers = (marker(Phase.CHECK_IN, 0, 1), marker(Phase.BASELINE, 1, 2),
               marker(Phase.INFUSION, 60, 3))
    if ended is not None:
        markers += (marker(Phase.DISCHARGED, 3000, 4),)
    return SessionRecord(
        info=info, check_in=ci, check_in_history=(ci,) if ci else (), readings=tuple(readings),
        device_events=(), markers=markers, baseline=None, minutes=minutes, notes=(), cadss=(),
        alarms=(), limit_changes=(), limits=limits or ThresholdProfile.defaults().limits(),
        rems=None, exported_at=at(4000),
    )


def rd(vital: Vital, value: float, seconds: float, quality: Quality = Quality.OK,
       device_offset: float | None = None) -> Reading:
    t = at(seconds)
    t_dev = None if device_offset is None else t + timedelta(seconds=device_offset)
    return Reading(vital, value, quality, t_device=t_dev, t_received=t)


def resources(bundle: Bundle, kind: str) -> list[Any]:
    return [e.resource for e in bundle.entry if e.resource.get_resource_type() == kind]


def observations(bundle: Bundle, category: str) -> list[Any]:
    return [o for o in resources(bundle, "Observation")
            if o.category[0].coding[0].code == category]


def codes(concept: Any, system: str) -> list[str]:
    return [c.code for c in concept.coding if c.system == system]


def vital_of(concept: Any) -> Vital:
    (mdc,) = codes(concept, MDC)
    return MDC_TO_VITAL[mdc]


def flag(element: Any) -> str | None:
    if not element.interpretation:
        return None
    (coding,) = element.interpretation[0].coding
    assert coding.system == INTERPRETATION
    return coding.code


def instant(text_or_dt: Any) -> int:
    t = text_or_dt if isinstance(text_or_dt, datetime) else datetime.fromisoformat(text_or_dt)
    return to_us(t)


def assert_valid(bundle: Bundle) -> dict[str, Any]:
    """Round-trip the JSON, re-validate every resource by its own class, check the references
    and what fhir.resources does not check (value sets, profile essentials); returns the JSON."""
    text = bundle.model_dump_json()
    again = Bundle.model_validate_json(text)
    assert again.model_dump_json() == text
    data = json.loads(text)
    assert data["resourceType"] == "Bundle" and data["type"] == "collection"
    urls = [e["fullUrl"] for e in data["entry"]]
    assert len(set(urls)) == len(urls)
    for e in data["entry"]:
        res = e["resource"]
        cls = get_fhir_model_class(res["resourceType"])
        assert cls.model_validate(res).model_dump(mode="json") == res
        assert e["fullUrl"] == f"urn:uuid:{res['id']}"
    refs = _references(data["entry"])
    assert refs and all(r in set(urls) for r in refs)
    for e in again.entry:
        r = e.resource
        if r.get_resource_type() == "Encounter":
            assert r.status in ENCOUNTER_STATUSES
        if r.get_resource_type() != "Observation":
            continue
        assert r.status in OBSERVATION_STATUSES
        assert r.subject.reference and r.encounter.reference
        if r.category[0].coding[0].code == "vital-signs" and codes(
            r.code, DEVICE_PARAMETER_SYSTEM
        ):  # a parameter with no standard code (PVI): no profile claimed, our code only
            assert r.meta is None and not codes(r.code, LOINC) and not codes(r.code, MDC)
            assert r.effectiveDateTime is not None and r.device.reference
        elif r.category[0].coding[0].code == "vital-signs":  # the R4 vital-signs profile
            pi = codes(r.code, LOINC) == [SPECS[Vital.PI].loinc]
            # PI has LOINC and MDC codes but no R4 vital-signs profile, so it claims none.
            assert (r.meta is None) if pi else bool(r.meta.profile)
            assert r.effectiveDateTime is not None and r.device.reference
            assert codes(r.code, LOINC) and codes(r.code, MDC)
            assert r.valueQuantity is not None or r.component
            for q in [r.valueQuantity] + [c.valueQuantity for c in r.component or ()]:
                if q is not None:
                    assert q.system == UCUM and q.code in {"/min", "%", "mm[Hg]"}
        else:
            assert r.category[0].coding[0].code == "survey" and r.meta is None
            assert codes(r.code, SCORE_SYSTEM) and not codes(r.code, LOINC)
    return data


def _references(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["reference"]] if isinstance(node.get("reference"), str) else []
        return found + [r for v in node.values() for r in _references(v)]
    if isinstance(node, list):
        return [r for v in node for r in _references(v)]
    return []


# -- unit tests on a record built in memory ------------------------------------------------------
def test_each_vital_has_loinc_mdc_ucum_and_its_profile() -> None:
    record = make_record([
        rd(Vital.HR, 78, 100, device_offset=-2.5), rd(Vital.PR, 77, 100),
        rd(Vital.SPO2, 97.5, 100), rd(Vital.RR, 14, 100),
    ])
    bundle = build_bundle(record)
    assert_valid(bundle)
    obs = {vital_of(o.code): o for o in observations(bundle, "vital-signs")}
    assert set(obs) == {Vital.HR, Vital.PR, Vital.SPO2, Vital.RR}
    expected = {
        Vital.HR: (["8867-4"], "147842", "/min", "heartrate", Decimal(78)),
        Vital.PR: (["8867-4"], "149530", "/min", "heartrate", Decimal(77)),
        Vital.SPO2: (["2708-6", "59408-5"], "150456", "%", "oxygensat", Decimal("97.5")),
        Vital.RR: (["9279-1"], "151562", "/min", "resprate", Decimal(14)),
    }
    for vital, (loinc, mdc, unit, profile, value) in expected.items():
        o = obs[vital]
        assert codes(o.code, LOINC) == loinc and codes(o.code, MDC) == [mdc]
        assert (o.valueQuantity.system, o.valueQuantity.code) == (UCUM, unit)
        assert o.valueQuantity.value == value
        assert o.meta.profile == [PROFILE + profile]
        assert o.status == "preliminary"  # unverified device data (HL7 v2 OBX-11 "R")
        assert flag(o) is None
    # The monitor's own time is the effective time; the receipt time is "issued".
    assert instant(obs[Vital.HR].effectiveDateTime) == to_us(at(97.5))
    assert instant(obs[Vital.HR].issued) == to_us(at(100))
    assert instant(obs[Vital.PR].effectiveDateTime) == to_us(at(100))
    text = bundle.model_dump_json()
    assert '"value":78,' in text and '"value":97.5,' in text  # 78, not 78.0


def test_perfusion_and_pleth_variability_index_are_exported_with_their_codes() -> None:
    record = make_record([rd(Vital.PI, 3.6, 100), rd(Vital.PVI, 14, 100),
                          rd(Vital.PI, 0.2, 101, Quality.QUESTIONABLE)])
    bundle = build_bundle(record)
    assert_valid(bundle)
    obs = observations(bundle, "vital-signs")
    assert len(obs) == 2  # the questionable PI is not exported
    pi = next(o for o in obs if codes(o.code, LOINC))
    pvi = next(o for o in obs if codes(o.code, DEVICE_PARAMETER_SYSTEM))
    assert codes(pi.code, LOINC) == ["61006-3"] and codes(pi.code, MDC) == [str(2 * 65536 + 19376)]
    assert pi.valueQuantity.value == Decimal("3.6") and pi.valueQuantity.code == "%"
    assert codes(pvi.code, DEVICE_PARAMETER_SYSTEM) == ["pvi"]
    assert pvi.valueQuantity.value == Decimal(14) and pvi.valueQuantity.code == "%"


def test_bp_panel_with_components_and_no_value_of_its_own() -> None:
    record = make_record([rd(Vital.NIBP_SYS, 124, 200), rd(Vital.NIBP_DIA, 82, 200),
                          rd(Vital.NIBP_MEAN, 96, 200)])
    bundle = build_bundle(record)
    assert_valid(bundle)
    (bp,) = observations(bundle, "vital-signs")
    assert codes(bp.code, LOINC) == ["85354-9"] and codes(bp.code, MDC) == ["150020"]
    assert bp.meta.profile == [PROFILE + "bp"] and bp.valueQuantity is None
    parts = [(codes(c.code, LOINC), codes(c.code, MDC), c.valueQuantity.value,
              c.valueQuantity.code) for c in bp.component]
    assert parts == [(["8480-6"], ["150021"], 124, "mm[Hg]"),
                     (["8462-4"], ["150022"], 82, "mm[Hg]"),
                     (["8478-0"], ["150023"], 96, "mm[Hg]")]


def test_artifacts_questionable_and_demo_values_are_never_exported() -> None:
    record = make_record([
        rd(Vital.HR, 80, 100), rd(Vital.HR, 400, 101, Quality.ARTIFACT),
        rd(Vital.SPO2, 96, 100), rd(Vital.SPO2, 70, 101, Quality.QUESTIONABLE),
        rd(Vital.RR, 12, 102, Quality.DEMO),
        # an invalid systolic invalidates the measurement; an invalid mean only drops the mean
        rd(Vital.NIBP_SYS, 400, 200, Quality.ARTIFACT), rd(Vital.NIBP_DIA, 80, 200),
        rd(Vital.NIBP_MEAN, 90, 200),
        rd(Vital.NIBP_SYS, 130, 300), rd(Vital.NIBP_DIA, 85, 300),
        rd(Vital.NIBP_MEAN, 20, 300, Quality.ARTIFACT),
    ])
    bundle = build_bundle(record)
    assert_valid(bundle)
    vitals = observations(bundle, "vital-signs")
    singles = sorted((vital_of(o.code).value, o.valueQuantity.value) for o in vitals
                     if o.valueQuantity is not None)
    assert singles == [("hr", 80), ("spo2", 96)]
    (bp,) = [o for o in vitals if o.component]
    assert [(vital_of(c.code), c.valueQuantity.value) for c in bp.component] == [
        (Vital.NIBP_SYS, 130), (Vital.NIBP_DIA, 85)]
    assert instant(bp.effectiveDateTime) == to_us(at(300))
    for value in ("400", "70", "20"):
        assert f'"value":{value},' not in bundle.model_dump_json()


def test_interpretation_against_the_session_limits() -> None:
    limits = ThresholdProfile.defaults().limits() | {"hr_high": 100}
    record = make_record([
        rd(Vital.HR, 100, 100), rd(Vital.HR, 101, 101), rd(Vital.PR, 45, 101),
        rd(Vital.SPO2, 91, 102), rd(Vital.SPO2, 92, 103), rd(Vital.RR, 31, 104),
        # before the infusion (T0 + 60 s) the pre-start limit (SBP > 140) applies
        rd(Vital.NIBP_SYS, 150, 30), rd(Vital.NIBP_DIA, 85, 30),
        rd(Vital.NIBP_SYS, 150, 200), rd(Vital.NIBP_DIA, 85, 200),
        rd(Vital.NIBP_SYS, 180, 300), rd(Vital.NIBP_DIA, 109, 300),
        rd(Vital.NIBP_SYS, 89, 400), rd(Vital.NIBP_DIA, 50, 400),
    ], limits=limits)
    bundle = build_bundle(record)
    assert_valid(bundle)
    got = [(vital_of(o.code).value, int(o.valueQuantity.value), flag(o))
           for o in observations(bundle, "vital-signs") if o.valueQuantity is not None]
    assert got == [("hr", 100, None), ("hr", 101, "H"), ("pr", 45, "L"), ("spo2", 91, "L"),
                   ("spo2", 92, None), ("rr", 31, "H")]
    panels = [[(int(c.valueQuantity.value), flag(c)) for c in o.component]
              for o in observations(bundle, "vital-signs") if o.component]
    assert panels == [[(150, "H"), (85, None)], [(150, None), (85, None)],
                      [(180, "H"), (109, None)], [(89, "L"), (50, None)]]


def test_scores_under_our_code_system_with_amendments_kept() -> None:
    minutes = (
        row(0, entry(1, 0, (1, 0, 0), 125)),
        row(1),  # not assessed: nothing exported
        row(2, entry(2, 2, (2, -1, 2), 245),
            entry(3, 2, (2, 0, None), 250, by="nurse.c", amends=2, reason="wrong row")),
        row(3, entry(4, 3, (None, -3, None), 305)),
    )
    bundle = build_bundle(make_record([], minutes))
    assert_valid(bundle)
    scores = observations(bundle, "survey")
    got = {(o.effectivePeriod.start, codes(o.code, SCORE_SYSTEM)[0]): o for o in scores}
    assert len(got) == len(scores) == 7
    m0, m2, m3 = (at(60 + 60 * k) for k in (0, 2, 3))
    assert [(o.valueInteger, o.status) for o in (got[m0, "dissociation"], got[m0, "rass"],
                                                 got[m0, "distress"])] == [
        (1, "final"), (0, "final"), (0, "final")]
    assert got[m0, "rass"].effectivePeriod.end == m0 + timedelta(minutes=1)
    assert got[m0, "rass"].performer[0].display == "nurse.b"
    # Unchanged by the amendment: final, by whoever first charted it.
    diss = got[m2, "dissociation"]
    assert (diss.valueInteger, diss.status, diss.performer[0].display) == (2, "final", "nurse.b")
    assert diss.note is None
    # Changed: the current value, "amended", the earlier value and the reason in a note.
    rass = got[m2, "rass"]
    assert (rass.valueInteger, rass.status, rass.performer[0].display) == (0, "amended",
                                                                           "nurse.c")
    assert "-1 (entered" in rass.note[0].text and "wrong row" in rass.note[0].text
    assert instant(rass.issued) == to_us(at(250))
    # Withdrawn by the amendment: kept, but entered-in-error (and no interpretation).
    distress = got[m2, "distress"]
    assert (distress.valueInteger, distress.status) == (2, "entered-in-error")
    assert flag(distress) is None and "not assessed" in distress.note[0].text
    assert (got[m3, "rass"].valueInteger, flag(got[m3, "rass"])) == (-3, "L")  # RASS <= -3
    assert all(o.category[0].coding[0].code != "vital-signs" for o in scores)


def test_patient_encounter_device() -> None:
    bundle = build_bundle(make_record([rd(Vital.HR, 80, 100)]))
    assert_valid(bundle)
    (patient,) = resources(bundle, "Patient")
    (mrn,) = patient.identifier
    assert (mrn.value, mrn.type.coding[0].code) == ("MRN-9", "MR")
    assert patient.name[0].text == "Pat Example" and patient.birthDate == date(1975, 4, 1)
    (enc,) = resources(bundle, "Encounter")
    assert enc.status == "finished" and enc.class_fhir.code == "AMB"
    assert (instant(enc.period.start), instant(enc.period.end)) == (to_us(T0), to_us(at(3000)))
    assert [p.individual.display for p in enc.participant] == ["Dr A", "N B"]
    (device,) = resources(bundle, "Device")
    assert device.identifier[0].value == "datex-s5@/dev/ttyUSB0@ws-1"
    assert "Datex-Ohmeda" in device.deviceName[0].name and device.manufacturer
    urls = {e.resource.get_resource_type(): e.fullUrl for e in bundle.entry[:3]}
    (obs,) = resources(bundle, "Observation")
    assert (obs.subject.reference, obs.encounter.reference, obs.device.reference) == (
        urls["Patient"], urls["Encounter"], urls["Device"])


def test_open_session_without_check_in() -> None:
    bundle = build_bundle(make_record([rd(Vital.HR, 80, 100)], check_in=False, ended=None))
    assert_valid(bundle)
    (patient,) = resources(bundle, "Patient")
    assert patient.identifier[0].value == "MRN-9" and patient.name is None  # from the session
    (enc,) = resources(bundle, "Encounter")
    assert enc.status == "in-progress" and enc.period.end is None


def test_same_record_same_bundle() -> None:
    record = make_record([rd(Vital.HR, 80, 100), rd(Vital.SPO2, 97, 100)])
    assert build_bundle(record).model_dump_json() == build_bundle(record).model_dump_json()
    other = replace(record, info=replace(record.info, uid="another"))
    ids = {e.fullUrl for e in build_bundle(record).entry}
    assert ids.isdisjoint(e.fullUrl for e in build_bundle(other).entry)


# -- the simulated 75-minute session, checked against the database -------------------------------
@pytest.fixture(scope="module")
def exported(simulated_session) -> tuple[Any, Bundle, dict[str, Any]]:
    db, sid = simulated_session.database, simulated_session.session_id
    bundle = build_bundle(load_session_record(db, sid))
    return simulated_session, bundle, assert_valid(bundle)


def test_every_valid_reading_exactly_once_and_nothing_else(exported) -> None:
    session, bundle, _ = exported
    stored = session.database.repository.readings(session.session_id)
    expected = Counter(
        (r.vital, to_us(r.t_device or r.time), Decimal(repr(r.value)))
        for r in stored
        if r.quality is Quality.OK and r.vital not in NIBP
    )
    vitals = observations(bundle, "vital-signs")
    got = Counter(
        (vital_of(o.code), instant(o.effectiveDateTime), o.valueQuantity.value)
        for o in vitals if o.valueQuantity is not None
    )
    assert sum(expected.values()) > 2000 and got == expected
    assert {v for v, _, _ in got} >= {Vital.HR, Vital.PR, Vital.SPO2}

    by_time: dict[int, dict[Vital, Reading]] = {}
    for r in stored:
        if r.vital in NIBP:
            by_time.setdefault(to_us(r.time), {})[r.vital] = r
    expected_bp = sorted(
        tuple((v, Decimal(repr(p[v].value))) for v in NIBP
              if v in p and p[v].quality is Quality.OK)
        for p in by_time.values()
        if all(v in p and p[v].quality is Quality.OK for v in NIBP[:2])
    )
    got_bp = sorted(tuple((vital_of(c.code), c.valueQuantity.value) for c in o.component)
                    for o in vitals if o.component)
    assert len(expected_bp) >= 10 and got_bp == expected_bp
    for o in vitals:  # UCUM units
        parts = [(o.code, o.valueQuantity)] if o.valueQuantity is not None else [
            (c.code, c.valueQuantity) for c in o.component]
        for code, q in parts:
            assert (q.system, q.code) == (UCUM, SPECS[vital_of(code)].ucum)
    # The hypertensive patient's BP is flagged high against the session's limits.
    limits = load_session_record(session.database, session.session_id).limits
    for o in vitals:
        for c in o.component or ():
            if vital_of(c.code) is Vital.NIBP_SYS and c.valueQuantity.value >= limits["sbp_high"]:
                assert flag(c) == "H"
    assert any(flag(c) == "H" for o in vitals for c in o.component or ())


def test_scores_match_the_charted_minutes(exported) -> None:
    session, bundle, _ = exported
    store = ChartStore(session.database.engine)
    entries = latest(store.minute_entries(session.session_id))
    start = next(m.t for m in store.markers(session.session_id) if m.phase is Phase.INFUSION)
    expected = {(e.minute, name): value for e in entries
                for name, value in (("dissociation", e.dissociation), ("rass", e.rass),
                                    ("distress", e.distress)) if value is not None}
    scores = observations(bundle, "survey")
    got = {((instant(o.effectivePeriod.start) - to_us(start)) // 60_000_000,
            codes(o.code, SCORE_SYSTEM)[0]): o.valueInteger for o in scores}
    assert len(got) == len(scores) and got == expected and len(expected) > 40
    amended = [o for o in scores if o.status == "amended"]
    assert amended and all(session.amend_reason in o.note[0].text for o in amended)
    assert {o.status for o in scores} <= {"final", "amended"}


def test_patient_encounter_device_match_the_database(exported) -> None:
    session, bundle, _ = exported
    db, sid = session.database, session.session_id
    ci = latest(ChartStore(db.engine).check_ins(sid))[-1]
    (patient,) = resources(bundle, "Patient")
    assert patient.identifier[0].value == ci.patient_id
    assert patient.name[0].text == ci.patient_name and patient.birthDate == ci.birth_date
    (enc,) = resources(bundle, "Encounter")
    info = db.repository.get_session(sid)
    markers = {m.phase: m.t for m in ChartStore(db.engine).markers(sid) if not m.voided}
    assert enc.status == "finished" and enc.identifier[0].value == info.uid
    assert instant(enc.period.start) == to_us(markers[Phase.CHECK_IN])
    assert instant(enc.period.end) == to_us(markers[Phase.DISCHARGED])
    (device,) = resources(bundle, "Device")
    assert device.identifier[0].value.startswith("datex-s5@/dev/ttyUSB0@")


def test_cli_writes_the_bundle(exported, tmp_path: Path, capsys) -> None:
    session, _, data = exported
    url = str(session.database.engine.url)
    out = tmp_path / "session.fhir.json"
    assert main(["export", str(session.session_id), "--format", "fhir", "-o", str(out),
                 "--db", url]) == 0
    written = Bundle.model_validate_json(out.read_text(encoding="utf-8"))
    assert [e.fullUrl for e in written.entry] == [e["fullUrl"] for e in data["entry"]]
    assert f"{len(data['entry'])} resources" in capsys.readouterr().err
    assert main(["export", "999999", "--format", "fhir", "--db", url]) == 1


def test_write_fhir_returns_the_resource_count() -> None:
    out = io.StringIO()
    n = write_fhir(make_record([rd(Vital.HR, 80, 100)]), out)
    assert n == 4 and json.loads(out.getvalue())["resourceType"] == "Bundle"
