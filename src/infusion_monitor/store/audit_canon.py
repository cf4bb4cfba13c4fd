"""The audit trail's canonical encoding (version 1): entry hashes and row digests.

This is a contract, not an implementation detail: every stored hash was computed with it, and a
clinic's auditor may re-implement it to check a database without this program. Never change
what is here; a new encoding gets a new version tag and new entries say which one they use.

Canonical JSON
    ``json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=True)`` encoded as
    UTF-8 (objects additionally with ``sort_keys=True``). Only strings, integers, booleans,
    null and arrays occur in a hashed array.

Entry hash
    ``sha256`` (lowercase hex) of the canonical JSON array
    ``["infusion-monitor-audit-v1", prev_hash, chain, seq, session_id, t_us, actor, action,
    entity, entity_id, reason, detail, row_digest]``, where ``detail`` is the stored JSON text
    itself (not re-encoded), absent values are null, and ``prev_hash`` of a chain's first entry
    is ``GENESIS`` (64 zeros).

Row digest
    ``sha256`` of the canonical JSON array ``[[table, [row, ...]], ...]``: the covered tables in
    name order, each table's rows in id order, each row the values of ``COLUMNS[table]`` in
    that order, normalised by column kind so that what was inserted and what either engine
    reads back encode alike: integers as JSON integers, floats as the 16 hex digits of their
    IEEE 754 big-endian double (``-0.0`` as ``0.0``, every NaN as ``7ff8000000000000``),
    booleans as ``true``/``false``, byte strings as lowercase hex, text as JSON strings.
    ``session_end`` is the ``sessions`` row's end time, which the row gains after it is created.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

VERSION_TAG = "infusion-monitor-audit-v1"
GENESIS = "0" * 64

# Column kinds: (whole) number, float, string, boolean, bytes.
N, F, S, B, Y = "i", "f", "s", "b", "y"

#: The columns a row digest covers, per table (frozen: a column added later is not covered by
#: version 1 digests). ``sessions`` is the part of the row fixed at creation.
COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "sessions": (("id", N), ("uid", S), ("workstation_id", S), ("patient_id", S),
                 ("source", S), ("protocol", S), ("port", S), ("started_us", N), ("note", S)),
    "session_end": (("id", N), ("ended_us", N)),
    "readings": (("id", N), ("session_id", N), ("vital", S), ("value", F), ("unit", S),
                 ("quality", S), ("t_us", N), ("t_device_us", N)),
    "device_events": (("id", N), ("session_id", N), ("kind", S), ("vital", S), ("detail", S),
                      ("count", N), ("t_us", N), ("t_device_us", N)),
    "waveform_blocks": (("id", N), ("session_id", N), ("wave", S), ("rate_hz", F),
                        ("t_start_us", N), ("t_device_us", N), ("n_samples", N),
                        ("encoding", S), ("samples", Y), ("scale", F), ("unit", S),
                        ("quality", S)),
    "alarm_events": (("id", N), ("session_id", N), ("alarm_uid", S), ("event", S),
                     ("condition", S), ("parameter", S), ("priority", S), ("value", F),
                     ("limit_value", F), ("latched", B), ("t_us", N), ("by_user", S),
                     ("detail", S)),
    "checkins": (("id", N), ("session_id", N), ("patient_id", S), ("patient_name", S),
                 ("birth_date", S), ("weight_kg", F), ("dose_mg_per_kg", F),
                 ("planned_minutes", N), ("attending", S), ("nurse", S), ("entered_us", N),
                 ("entered_by", S), ("amends_id", N), ("reason", S)),
    "phase_markers": (("id", N), ("session_id", N), ("phase", S), ("t_us", N), ("detail", S),
                      ("voided", B), ("entered_us", N), ("entered_by", S), ("amends_id", N),
                      ("reason", S)),
    "minute_entries": (("id", N), ("session_id", N), ("minute", N), ("dissociation", N),
                       ("rass", N), ("distress", N), ("entered_us", N), ("entered_by", S),
                       ("amends_id", N), ("reason", S)),
    "notes": (("id", N), ("session_id", N), ("t_us", N), ("minute", N), ("text", S),
              ("entered_us", N), ("entered_by", S), ("amends_id", N), ("reason", S)),
    "cadss_forms": (("id", N), ("session_id", N), ("timepoint", S), ("item1", N),
                    ("item2", N), ("item6", N), ("item7", N), ("item15", N), ("item22", N),
                    ("t_us", N), ("entered_us", N), ("entered_by", S), ("amends_id", N),
                    ("reason", S)),
    "limit_changes": (("id", N), ("session_id", N), ("condition", S), ("old_value", F),
                      ("new_value", F), ("t_us", N), ("by_user", S), ("reason", S)),
    "signoffs": (("id", N), ("session_id", N), ("signed_by", S), ("printed_name", S),
                 ("role", S), ("meaning", S), ("comment", S), ("signed_us", N)),
    # Added with user accounts (revision 0007); existing tables and digests are unchanged.
    # An account is covered as two parts, always together: who it is, fixed at creation
    # (``users``), and what may change (``user_state``). Only an account's latest entry is
    # checked against the row as it is now; earlier ones were superseded by it.
    "users": (("id", N), ("username", S), ("display_name", S), ("role", S),
              ("created_us", N), ("created_by", S)),
    "user_state": (("id", N), ("password_hash", S), ("disabled", B),
                   ("password_changed_us", N)),
    # Added with the clinic defaults (revision 0008): append-only, one entry per row.
    "clinic_defaults": (("id", N), ("key", S), ("value", S), ("set_us", N), ("set_by", S),
                        ("reason", S)),
}

#: The database table each covered table's rows live in.
SOURCE_TABLE = {name: {"session_end": "sessions", "user_state": "users"}.get(name, name)
                for name in COLUMNS}

#: Covered tables that belong to the clinic chain and have no ``session_id``.
CLINIC_TABLES = ("users", "user_state", "clinic_defaults")

#: Tables whose rows belong to a session through ``session_id`` (every one must be covered).
SESSION_TABLES = tuple(n for n in COLUMNS
                       if n not in ("sessions", "session_end", *CLINIC_TABLES))

_NAN = "7ff8000000000000"


def canonical_json(value: Any, *, sort_keys: bool = False) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=True,
                      sort_keys=sort_keys)


def detail_json(detail: Mapping[str, Any] | None) -> str:
    """The stored form of an entry's ``detail`` (keys sorted)."""
    return canonical_json(dict(detail or {}), sort_keys=True)


def _float(value: Any) -> Any:
    if value is None:
        return None
    f = float(value)
    if math.isnan(f):
        return _NAN
    return struct.pack(">d", f + 0.0).hex()  # + 0.0 turns -0.0 into 0.0


_NORMAL = {
    N: lambda v: None if v is None else int(v),
    F: _float,
    S: lambda v: None if v is None else str(v),
    B: lambda v: None if v is None else bool(v),
    Y: lambda v: None if v is None else bytes(v).hex(),
}
_NORMALISERS = {table: tuple((name, _NORMAL[kind]) for name, kind in cols)
                for table, cols in COLUMNS.items()}


def canonical_row(table: str, row: Mapping[str, Any]) -> list[Any]:
    """One row as the digest sees it (``row`` maps column names to values, ``id`` included)."""
    return [norm(row[name]) for name, norm in _NORMALISERS[table]]


def row_digest(rows: Mapping[str, Iterable[Sequence[Any]]]) -> str:
    """The digest of canonical rows (``canonical_row`` output), per covered table."""
    body = [[table, sorted(rows[table], key=lambda r: r[0])] for table in sorted(rows)]
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def entry_hash(*, prev_hash: str, chain: str, seq: int, session_id: int | None, t_us: int,
               actor: str, action: str, entity: str, entity_id: int | None,
               reason: str | None, detail: str, row_digest: str | None) -> str:
    """The hash that links an entry into its chain (see the module docstring)."""
    body = [VERSION_TAG, prev_hash, chain, seq, session_id, t_us, actor, action, entity,
            entity_id, reason, detail, row_digest]
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def id_ranges(ids: Iterable[int]) -> list[list[int]]:
    """Sorted ids as inclusive ``[first, last]`` runs: [1, 2, 3, 7] -> [[1, 3], [7, 7]]."""
    out: list[list[int]] = []
    for i in sorted(set(ids)):
        if out and out[-1][1] == i - 1:
            out[-1][1] = i
        else:
            out.append([i, i])
    return out


def range_ids(ranges: Iterable[Sequence[int]]) -> list[int]:
    return [i for first, last in ranges for i in range(int(first), int(last) + 1)]


def ranges_text(ranges: Sequence[Sequence[int]]) -> str:
    """[[120, 180], [200, 200]] -> "120-180, 200"."""
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges)
