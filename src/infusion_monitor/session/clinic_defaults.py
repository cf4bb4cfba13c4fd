"""The clinic defaults: alarm limits and alarm/review behaviour an admin sets for every chair.

They are kept in the shared database (store/clinic_defaults.py), so one change reaches every
workstation at its next session; a workstation's settings file still names the workstation
and may set what the clinic has not. A change needs the ``change_clinic_defaults`` permission
(admins), a reason, and a value that keeps the limits in order; it is audited with the old and
new value. Sessions already running keep the limits they started with (a running session's
limits are changed per patient by an attending).
"""

from __future__ import annotations

from sqlalchemy import Engine

from infusion_monitor.config import Settings, clinic_key, clinic_value, with_clinic_defaults
from infusion_monitor.errors import ConfigError
from infusion_monitor.session import validate
from infusion_monitor.session.auth import Access, Action
from infusion_monitor.store.audit import current_user, now_us
from infusion_monitor.store.clinic_defaults import ClinicDefaults, DefaultChange


def in_force(engine: Engine) -> dict[str, DefaultChange]:
    """The clinic defaults set now, by key (reading them needs no permission: every chair
    runs with them)."""
    return ClinicDefaults(engine).in_force()


def effective_settings(settings: Settings, engine: Engine | None) -> Settings:
    """``settings`` (this workstation's file) with the clinic defaults of ``engine`` in force."""
    if engine is None:
        return settings
    found = in_force(engine)
    return with_clinic_defaults(settings, {k: float(c.value) for k, c in found.items()},
                                {k: c.source for k, c in found.items()})


def change_default(engine: Engine, access: Access, key: str, text: str | None, *,
                   reason: object, by: str | None = None) -> DefaultChange:
    """Set ``key`` to the number ``text`` (None: back to the built-in default), for ``reason``.

    Refused (PermissionDeniedError, recorded) unless the principal may change the clinic
    defaults; ConfigError for an unknown key, a value out of range or out of order with the
    other limits, or a change that changes nothing. ``by`` is the typed name when the
    database has no accounts (else the logged-in user is named).
    """
    what = f"change the clinic default {key}"
    actor = access.require(Action.CHANGE_CLINIC_DEFAULTS, by or current_user(), what=what)
    key = clinic_key(key)
    why = validate.reason(reason)
    value = None if text is None else clinic_value(key, text)
    store = ClinicDefaults(engine)
    current = {k: float(c.value) for k, c in store.in_force().items()}
    if current.get(key) == value:
        state = "not set" if value is None else f"already {value:g}"
        raise ConfigError(f"the clinic default {key} is {state}: nothing was changed")
    proposed = {k: v for k, v in current.items() if k != key}
    if value is not None:
        proposed[key] = value
    with_clinic_defaults(Settings(), proposed)  # the whole set must make sense
    return store.change(key, value, by=actor, t_us=now_us(), reason=why)
