"""``export --format hl7``: ORU^R01 as IHE PCD-01 profiles it, checked by two HL7 libraries.

hl7apy (strict, with the ORU_R01 groups) says the message is valid v2.6; python-hl7 parses it a
second, independent way, and every OBX it finds is checked against the database.
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import hl7
import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from infusion_monitor.cli import main
from infusion_monitor.export.hl7v2 import build_oru, write_hl7
from infusion_monitor.export.record import SessionRecord, load_session_record, session_limits
from infusion_monitor.session.lifecycle import SessionChart
from infusion_monitor.session.minutes import MinuteRow, MinuteVitals
from infusion_monitor.store import open_database
from infusion_monitor.store.alarm_log import AlarmLog
from infusion_monitor.store.charting import ChartStore, CheckIn, MinuteEntry, chains
from infusion_monitor.store.repository import SessionInfo
from infusion_monitor.vitals import Quality, Reading, Vital

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
PROFILE = "1.3.6.1.4.1.19376.1.6.1.1.1"

# What the OBX-3 / OBX-6 of each vital must be (clinical.md "Codes for exports").
CODES = {
    "hr": ("147842^MDC_ECG_HEART_RATE^MDC", "264864^MDC_DIM_BEAT_PER_MIN^MDC^/min^/min^UCUM"),
    "pr": ("149530^MDC_PULS_OXIM_PULS_RATE^MDC",
           "264864^MDC_DIM_BEAT_PER_MIN^MDC^/min^/min^UCUM"),
    "spo2": ("150456^MDC_PULS_OXIM_SAT_O2^MDC", "262688^MDC_DIM_PERCENT^MDC^%^%^UCUM"),
    "nibp_sys": ("150021^MDC_PRESS_BLD_NONINV_SYS^MDC",
                 "266016^MDC_DIM_MMHG^MDC^mm[Hg]^mm[Hg]^UCUM"),
    "nibp_dia": ("150022^MDC_PRESS_BLD_NONINV_DIA^MDC",
                 "266016^MDC_DIM_MMHG^MDC^mm[Hg]^mm[Hg]^UCUM"),
    "nibp_mean": ("150023^MDC_PRESS_BLD_NONINV_MEAN^MDC",
                  "266016^MDC_DIM_MMHG^MDC^mm[Hg]^mm[Hg]^UCUM"),
    "rr": ("151562^MDC_RESP_RATE^MDC", "264928^MDC_DIM_RESP_PER_MIN^MDC^/min^/min^UCUM"),
}
SCORE_CODES = {
    "DISSOC^Dissociation depth^99KET": "dissociation",
    "RASS^Richmond Agitation-Sedation Scale^99KET": "rass",
    "DISTRESS^Distress^99KET": "distress",
}
HEADERS = {"69965^MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS^MDC", "150020^MDC_PRESS_BLD_NONINV^MDC"}


def expected_flag(vital: str, v: float, lim: dict[str, float]) -> str:
    """OBX-8 written out by hand from the session's limits (severe limits doubled)."""
    if vital in ("hr", "pr"):
        return ("HH" if v > lim["hr_high_severe"] else "H" if v > lim["hr_high"]
                else "LL" if v < lim["hr_low_severe"] else "L" if v < lim["hr_low"] else "")
    if vital == "spo2":
        return "LL" if v < lim["spo2_low_severe"] else "L" if v < lim["spo2_low"] else ""
    if vital == "nibp_sys":
        return ("HH" if v >= lim["sbp_high_severe"] else "H" if v >= lim["sbp_high"]
                else "L" if v < lim["sbp_low"] else "")
    if vital == "nibp_dia":
        return "HH" if v >= lim["dbp_high_severe"] else "H" if v >= lim["dbp_high"] else ""
    if vital == "rr":
        return "L" if v < lim["rr_low"] else "H" if v > lim["rr_high"] else ""
    return ""


def score_flag(name: str, v: int, lim: dict[str, float]) -> str:
    if name == "rass":
        return "LL" if v <= lim["rass_deep"] else "H" if v >= lim["agitation"] else ""
    if name == "distress":
        return "H" if v >= lim["distress"] else ""
    return ""


def dtm(text: str) -> datetime:
    """An HL7 DTM as this export writes it (UTC, optional fraction) back to a datetime."""
    assert text.endswith("+0000"), text
    body = text[:-5]
    main_part, _, frac = body.partition(".")
    t = datetime.strptime(main_part, "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    return t + timedelta(microseconds=int(frac.ljust(6, "0")) if frac else 0)


def to_100us(t: datetime) -> datetime:
    return t.replace(microsecond=t.microsecond // 100 * 100)


def validate_strict(er7: str):
    """hl7apy strict parse with groups, then validate(); returns the message."""
    msg = parse_message(er7, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
    msg.validate()
    assert msg.msh.msh_9.to_er7() == "ORU^R01^ORU_R01"
    assert msg.msh.msh_12.to_er7() == "2.6"
    assert PROFILE in msg.msh.msh_21.to_er7()
    assert [c.name for c in msg.children] == ["MSH", "ORU_R01_PATIENT_RESULT"]
    result = msg.oru_r01_patient_result
    assert result.children[0].name == "ORU_R01_PATIENT"
    assert {c.name for c in result.children[1:]} == {"ORU_R01_ORDER_OBSERVATION"}
    n_obx = 0
    for order in result.children[1:]:
        assert order.children[0].name == "OBR"
        for obs in order.children[1:]:
            assert obs.name == "ORU_R01_OBSERVATION" and obs.children[0].name == "OBX"
            n_obx += 1
    assert n_obx == er7.count("\rOBX|")
    return msg


def obx_rows(er7: str) -> list[dict[str, str]]:
    """Every OBX as python-hl7 reads it, with the OBR it sits under."""
    msg = hl7.parse(er7)
    rows, obr = [], None
    for seg in msg:
        name = str(seg[0])
        if name == "OBR":
            obr = {"service": str(seg[4]), "start": str(seg[7]), "end": str(seg[8])}
        elif name == "OBX":
            assert obr is not None
            field = {i: str(seg[i]) if len(seg) > i else "" for i in range(1, 20)}
            rows.append({"obr": obr, **{f"obx{i}": v for i, v in field.items()},
                         "observer": msg.unescape(field[16])})
        elif name == "NTE":
            rows[-1].setdefault("notes", []).append(msg.unescape(str(seg[3])))
    return rows


# -- the simulated session, against the database ------------------------------------------------
@pytest.fixture(scope="module")
def session_export(simulated_session):
    db, sid = simulated_session.database, simulated_session.session_id
    record = load_session_record(db, sid)
    return simulated_session, record, build_oru(record)


def test_session_export_is_strict_v26_oru_and_every_obx_matches_the_database(session_export):
    sim, record, messages = session_export
    db, sid = sim.database, sim.session_id
    assert len(messages) == 1
    er7 = messages[0]
    validate_strict(er7)

    # Independent reads of the database (not the SessionRecord the export used).
    readings = db.repository.readings(sid)
    limits = session_limits(AlarmLog(db.engine).limit_changes(sid))
    entries = chains(ChartStore(db.engine).minute_entries(sid))
    infusion_start = SessionChart.open(db, sid).infusion_start
    equipment = record.equipment_id
    assert equipment.startswith("datex-s5@/dev/ttyUSB0@")

    parsed = hl7.parse(er7)
    pid = parsed.segment("PID")
    assert str(pid[3]) == "MRN-0042^^^^PI" and str(pid[5]) == "Ada Example"
    assert str(pid[7]) == "19800517"
    assert str(parsed.segment("MSH")[9]) == "ORU^R01^ORU_R01"

    rows = obx_rows(er7)
    got_vitals: Counter = Counter()
    got_scores: Counter = Counter()
    for row in rows:
        code, status = row["obx3"], row["obx11"]
        if code in HEADERS:  # MDS / NIBP compound headers: no value, status X
            assert status == "X" and row["obx5"] == "" and row["obx2"] == ""
            continue
        if code in SCORE_CODES:
            assert row["obr"]["service"].endswith("^99KET")
            assert row["obx6"] == "" and row["obx18"] == ""
            got_scores[(SCORE_CODES[code], int(row["obx5"]), dtm(row["obx14"]), status,
                        row["obx8"], row["observer"], dtm(row["obx19"]))] += 1
            continue
        assert status == "R" and row["obx2"] == "NM"
        assert row["obx17"] == "AMEAS^auto-measurement^MDC"
        assert row["obx18"] == equipment
        assert row["obr"]["service"] == "182777000^monitoring of patient^SNOMED-CT"
        assert row["obr"]["start"] == row["obx14"]
        got_vitals[(code, float(row["obx5"]), row["obx6"], dtm(row["obx14"]), row["obx8"])] += 1

    ok = [r for r in readings if r.quality is Quality.OK]
    want_vitals = Counter(
        (CODES[r.vital.value][0], r.value, CODES[r.vital.value][1],
         to_100us(r.t_device or r.t_received), expected_flag(r.vital.value, r.value, limits))
        for r in ok
    )
    assert got_vitals == want_vitals  # every valid reading exactly once, nothing else
    assert sum(got_vitals.values()) == len(ok) > 2000
    flags = Counter(k[4] for k in got_vitals.elements())
    assert flags["H"] and flags["HH"]  # the hypertensive scenario crosses both BP limits

    want_scores: Counter = Counter()
    for chain in entries:
        current, earlier = chain[-1], chain[:-1]
        for name in ("dissociation", "rass", "distress"):
            v = getattr(current, name)
            if v is None:
                continue
            corrected = any(getattr(e, name) != v for e in earlier)
            want_scores[(name, v, infusion_start + timedelta(minutes=current.minute),
                         "C" if corrected else "F", score_flag(name, v, limits),
                         f"^{current.entered_by}", current.entered_at)] += 1
    assert got_scores == want_scores

    # The amendment: the current value, status C, the old value and the reason in an NTE.
    amended = [r for r in rows if r["obx11"] == "C"]
    assert {SCORE_CODES[r["obx3"]] for r in amended} == {"dissociation", "rass"}
    for r in amended:
        assert len(r["notes"]) == 1 and sim.amend_reason in r["notes"][0]
    assert any("was 2" in r["notes"][0] for r in amended)


def test_each_obr_has_unique_observation_sub_ids(session_export):
    _, _, messages = session_export
    msg = hl7.parse(messages[0])
    seen: set[tuple[str, str]] = set()
    for seg in msg:
        if str(seg[0]) == "OBR":
            seen = set()
        elif str(seg[0]) == "OBX":
            key = (str(seg[3]), str(seg[4]))
            assert key not in seen
            seen.add(key)
            if str(seg[3]).startswith("15002"):  # NIBP compound and its parts
                assert str(seg[4]).startswith("1.0.0.5")


def test_per_minute_messages_hold_the_same_observations(session_export):
    _, record, _ = session_export
    # The first 12 minutes of the infusion (per-minute building is slow with hl7apy strict).
    start = record.minutes[0].vitals.start
    cut = start + timedelta(minutes=12)
    small = replace(
        record, readings=tuple(r for r in record.readings if r.time < cut),
        minutes=record.minutes[:12],
    )
    per_session = build_oru(small)
    per_minute = build_oru(small, per_minute=True)
    assert len(per_session) == 1 and len(per_minute) == 12 + 5  # 5 baseline minutes too
    for er7 in per_minute:
        validate_strict(er7)
        times = {dtm(r["obr"]["start"]) for r in obx_rows(er7)}
        minutes = {(t - start) // timedelta(minutes=1) for t in times}
        assert len(minutes) == 1  # one minute of the infusion clock per message

    def strip(rows):
        return Counter(tuple(sorted((k, v) for k, v in r.items()
                                    if k not in ("obr", "obx1", "notes"))) for r in rows)

    assert strip(r for m in per_minute for r in obx_rows(m)) == strip(obx_rows(per_session[0]))
    ids = [hl7.parse(m).segment("MSH")[10] for m in per_minute]
    assert len(set(map(str, ids))) == len(ids)


# -- a small record built in memory -------------------------------------------------------------
def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def small_record(**changes) -> SessionRecord:
    info = SessionInfo(1, "uid-1", "ws|1", "P-9", "gui", "datex-s5", "COM3", T0, at(600), None,
                       0, 0)
    check_in = CheckIn(1, 1, "P-9", "O'Brien^Jr & Co|x~y\\z, Ann", date(1970, 1, 2), 80, 0.5,
                       40, "Dr A", "RN B", T0, "RN B")
    vitals = MinuteVitals(0, at(60), at(120), None, None, None, None, None, None, None, 0, True)
    first = MinuteEntry(1, 1, 0, 2, -1, 0, at(125), "RN B")
    current = MinuteEntry(2, 1, 0, 2, -4, None, at(200), "RN C", amends_id=1,
                          reason="wrong | row\nsecond line")
    record = SessionRecord(
        info=info, check_in=check_in, check_in_history=(check_in,),
        readings=(
            Reading(Vital.HR, 131, t_device=at(70.25), t_received=at(71)),
            Reading(Vital.HR, 45, t_received=at(75)),
            Reading(Vital.SPO2, 87.5, t_received=at(75)),
            Reading(Vital.SPO2, 400, Quality.ARTIFACT, t_received=at(80)),
            Reading(Vital.PR, 99, Quality.QUESTIONABLE, t_received=at(80)),
            Reading(Vital.RR, 8, Quality.DEMO, t_received=at(80)),
            Reading(Vital.RR, 9, t_received=at(85)),
            Reading(Vital.NIBP_SYS, 185, t_received=at(90)),
            Reading(Vital.NIBP_DIA, 95, t_received=at(90)),
            Reading(Vital.PI, 3.6, t_received=at(95)),
            Reading(Vital.PVI, 14, t_received=at(95)),
        ),
        device_events=(), markers=(), baseline=None,
        minutes=(MinuteRow(vitals, current, (first,)),), notes=(), cadss=(), alarms=(),
        limit_changes=(), limits=session_limits([]), rems=None, exported_at=at(700),
    )
    return replace(record, **changes)


def test_small_record_obx_content():
    record = small_record()
    (er7,) = build_oru(record)
    validate_strict(er7)
    rows = obx_rows(er7)
    values = [(r["obx3"].split("^")[1], r["obx5"], r["obx8"], r["obx11"], r["obx14"])
              for r in rows if r["obx3"] not in HEADERS]
    assert values == [
        # Minute 0's scores (OBR-7 at the minute's start, so first); dissociation unchanged by
        # the amendment: F; RASS changed: C; distress blank in the current version: no OBX.
        ("Dissociation depth", "2", "", "F", "20260504090100+0000"),
        ("Richmond Agitation-Sedation Scale", "-4", "LL", "C", "20260504090100+0000"),
        # OBX-14: the device time if there is one, else the receipt time
        ("MDC_ECG_HEART_RATE", "131", "HH", "R", "20260504090110.2500+0000"),
        ("MDC_ECG_HEART_RATE", "45", "L", "R", "20260504090115+0000"),
        ("MDC_PULS_OXIM_SAT_O2", "87.5", "LL", "R", "20260504090115+0000"),
        ("MDC_RESP_RATE", "9", "L", "R", "20260504090125+0000"),
        ("MDC_PRESS_BLD_NONINV_SYS", "185", "H", "R", "20260504090130+0000"),
        ("MDC_PRESS_BLD_NONINV_DIA", "95", "", "R", "20260504090130+0000"),
        # PI has an MDC code; Masimo's PVI has none and goes under the local code system.
        ("MDC_PULS_OXIM_PERF_REL", "3.6", "", "R", "20260504090135+0000"),
        ("PVI", "14", "", "R", "20260504090135+0000"),
    ]
    # Artifact, questionable and demo values are not sent at all.
    assert "400" not in er7 and "|99|" not in er7 and "|8|" not in er7
    rass = next(r for r in rows if r["obx3"].startswith("RASS"))
    assert rass["observer"] == "^RN C" and rass["obx19"] == "20260504090320+0000"
    assert rass["notes"] == [
        "Corrected by RN C at 2026-05-04T09:03:20Z: was -1 (entered by RN B at "
        "2026-05-04T09:02:05Z); reason: wrong | row\nsecond line"
    ]
    assert rass["obr"] == {"service": "KETASSESS^Ketamine infusion nursing assessment^99KET",
                           "start": "20260504090100+0000", "end": "20260504090200+0000"}


def test_text_is_escaped_and_round_trips():
    (er7,) = build_oru(small_record())
    parsed = hl7.parse(er7)
    pid = parsed.segment("PID")
    assert parsed.unescape(str(pid[5][0][0])) == "O'Brien^Jr & Co|x~y\\z"
    assert str(pid[5][0][1]) == "Ann"
    assert parsed.unescape(str(parsed.segment("MSH")[4])) == "ws|1"
    strict = validate_strict(er7)
    assert strict.oru_r01_patient_result.oru_r01_patient.pid.pid_5.xpn_2.to_er7() == "Ann"


def test_no_check_in_no_data_still_one_valid_message():
    record = small_record(check_in=None, check_in_history=(), readings=(), minutes=())
    (er7,) = build_oru(record)
    validate_strict(er7)
    parsed = hl7.parse(er7)
    assert str(parsed.segment("PID")[3]) == "P-9^^^^PI"
    assert str(parsed.segment("PID")[5]) == "^^^^^^U"  # no name charted: none invented
    info = replace(record.info, patient_id=None)
    (er7,) = build_oru(replace(record, info=info))
    validate_strict(er7)
    assert str(hl7.parse(er7).segment("PID")[3]) == "uid-1^^^INFUSION_MONITOR^VN"
    obr = parsed.segment("OBR")
    assert (str(obr[7]), str(obr[8])) == ("20260504090000+0000", "20260504091000+0000")
    assert "OBX" not in er7
    assert build_oru(record, per_minute=True) == []


def test_write_hl7_separates_segments_with_cr():
    out = io.StringIO()
    early = Reading(Vital.HR, 70, t_received=at(30))  # before the infusion's minute 0
    record = small_record()
    record = replace(record, readings=(early, *record.readings))
    assert write_hl7(record, out, per_minute=True) == 2
    text = out.getvalue()
    assert "\n" not in text and text.count("MSH|") == 2 and text.endswith("\r")


def test_cli_export_hl7(tmp_path, capsys, db_url):
    with open_database(db_url) as db:
        sid = db.repository.create_session(source="record", protocol="datex-s5", port="x",
                                           started=T0)
        db.repository.insert_readings(sid, [
            Reading(Vital.HR, 80, t_received=at(1)), Reading(Vital.SPO2, 97, t_received=at(1)),
            Reading(Vital.HR, 0, Quality.ARTIFACT, t_received=at(6)),
        ])
    out = tmp_path / "s.hl7"
    assert main(["--db", db_url, "export", str(sid), "--format", "hl7", "-o",
                 str(out)]) == 0
    assert "wrote 1 HL7" in capsys.readouterr().err
    er7 = out.read_bytes().decode()
    assert "\n" not in er7
    validate_strict(er7.rstrip("\r"))
    assert [r["obx5"] for r in obx_rows(er7) if r["obx3"] not in HEADERS] == ["80", "97"]
    assert main(["--db", db_url, "export", str(sid), "--format", "hl7",
                 "--per-minute"]) == 0
    assert capsys.readouterr().out.count("MSH|") == 1
