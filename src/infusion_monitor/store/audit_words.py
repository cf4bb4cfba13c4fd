"""The audit trail in the clinic's words: what an entry records ("minute 10 amended")."""

from __future__ import annotations

from typing import TYPE_CHECKING

from infusion_monitor.session.phases import Phase
from infusion_monitor.store.audit_canon import range_ids

if TYPE_CHECKING:
    from infusion_monitor.store.audit import AuditEntry

_TABLE_WORDS = {
    "readings": "readings", "device_events": "device events", "alarm_events": "alarm events",
    "waveform_blocks": "waveform blocks", "limit_changes": "limit changes",
}


def _number(v: object) -> str:
    return "—" if v is None else (f"{v:g}" if isinstance(v, float) else str(v))


def _login(d: dict[str, object]) -> str:
    purpose = d.get("purpose")
    return {"switch": "switched user (logged in)", "unlock": "unlocked (logged in)",
            "signature": "password confirmed for a signature"}.get(str(purpose), "logged in")


def describe(e: AuditEntry) -> str:
    """What an entry records, in the clinic's words."""
    d, amend = e.detail, e.action == "amend"
    if e.action == "record":
        try:
            counts = [f"{len(range_ids(r))} {_TABLE_WORDS.get(t, t)}"
                      for t, r in sorted(d.get("rows", {}).items())]
        except (AttributeError, TypeError, ValueError):  # an edited entry: verify says so
            return "device data recorded"
        return "device data recorded: " + ", ".join(counts)
    if e.action == "adopt":
        return "adopted at the audit trail's start (recorded before it)"
    if e.entity == "phase_markers":
        try:
            label = Phase(d.get("phase")).label
        except ValueError:
            label = str(d.get("phase"))
        return f"phase undone: {label}" if d.get("voided") else f"phase: {label}"
    if e.entity == "checkins":
        return "check-in amended" if amend else "checked in"
    if e.entity == "minute_entries":
        return f"minute {d.get('minute')} {'amended' if amend else 'charted'}"
    if e.entity == "notes":
        return "note amended" if amend else "note added"
    if e.entity == "cadss_forms":
        return f"CADSS-6 {d.get('timepoint')} {'amended' if amend else 'recorded'}"
    words = {
        "acknowledge": "alarm acknowledged", "respond": "alarm response",
        "pause_audio": "alarm audio paused", "sign_off": f"signed off ({d.get('meaning')})",
        "end": "session ended", "login": _login(d),
        "resume": "session resumed after an interruption",
        "interrupted": "session closed as interrupted",
        "login_failed": "login failed" + (f" ({d['purpose']})" if d.get("purpose") not in
                                          (None, "login") else ""),
        "denied": f"refused: {d.get('what') or d.get('attempted')}",
        "user_add": f"account {d.get('username')} added ({d.get('role')})",
        "user_disable": f"account {d.get('username')} disabled",
        "user_enable": f"account {d.get('username')} enabled",
        "password_reset": f"password of {d.get('username')} reset",
        "password_rehash": f"password of {d.get('username')} re-hashed (stronger settings)",
        "export": f"exported {d.get('format', '')}".rstrip(),
        "limit_change": f"limit {d.get('condition')}: {_number(d.get('old_value'))} → "
                        f"{_number(d.get('new_value'))}",
    }
    if e.action in words:
        return words[e.action]
    if e.action == "create" and e.entity == "sessions":
        return "session created"
    return f"{e.action} {e.entity}" + (f" #{e.entity_id}" if e.entity_id is not None else "")
