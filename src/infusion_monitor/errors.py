"""One exception hierarchy for the whole app; the CLI and GUI turn these into messages."""


class InfusionMonitorError(Exception):
    """Base of every error the app raises on purpose."""


class DeviceError(InfusionMonitorError):
    """Something went wrong talking to a patient monitor."""


class DeviceConnectionError(DeviceError):
    """The serial port could not be opened, or it went away."""


class ProtocolError(DeviceError):
    """The monitor sent something the codec cannot accept (refused association, bad setup)."""


class StoreError(InfusionMonitorError):
    """The database could not be opened, migrated, read or written."""


class ConfigError(InfusionMonitorError):
    """A setting, argument or input value is wrong."""


class ChartingError(InfusionMonitorError):
    """A charting action was refused (score out of range, missing baseline, closed session...).

    The message says what to do; nothing was written.
    """


class AuthenticationError(InfusionMonitorError):
    """A login (or a signature's password) was refused; the message never says which part of
    the credentials was wrong."""


class PermissionDeniedError(InfusionMonitorError):
    """The user logged in at this chair may not do this; the message says who may.

    The refusal is in the audit trail (action "denied"); nothing else was written.
    """
