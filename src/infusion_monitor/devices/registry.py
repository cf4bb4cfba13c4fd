"""Maps protocol names to codec classes, imported lazily (after python-can's interface registry)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from infusion_monitor.devices.base import Codec, SerialSettings
from infusion_monitor.errors import ConfigError
from infusion_monitor.vitals import NIBP, Vital

_MONITOR = frozenset({Vital.HR, Vital.PR, Vital.SPO2, *NIBP})
_OXIMETER = frozenset({Vital.PR, Vital.SPO2, Vital.PI})


@dataclass(frozen=True, slots=True)
class ProtocolInfo:
    name: str
    title: str
    target: str  # "module:Class"
    serial: SerialSettings
    sends: frozenset[Vital] = _MONITOR  # what the device can send (the tiles say what it cannot)

    def load(self) -> type[Codec]:
        module, _, cls = self.target.partition(":")
        return getattr(importlib.import_module(module), cls)

    def create(self) -> Codec:
        return self.load()()


PROTOCOLS: dict[str, ProtocolInfo] = {
    p.name: p
    for p in (
        ProtocolInfo(
            "datex-s5",
            "GE Datex-Ohmeda S/5 (Computer Interface)",
            "infusion_monitor.devices.datex_s5:DatexS5Codec",
            SerialSettings(baudrate=19200, bytesize=8, parity="E", stopbits=1, rtscts=True),
        ),
        ProtocolInfo(
            "intellivue",
            "Philips IntelliVue (MIB/RS232 Data Export)",
            "infusion_monitor.devices.intellivue:IntelliVueCodec",
            SerialSettings(baudrate=115200, bytesize=8, parity="N", stopbits=1),
        ),
        ProtocolInfo(
            "masimo",
            "Masimo Rad-8 / Radical-7 (ASCII 1)",
            "infusion_monitor.devices.masimo:MasimoCodec",
            SerialSettings(baudrate=9600, bytesize=8, parity="N", stopbits=1),
            _OXIMETER | {Vital.PVI},
        ),
        ProtocolInfo(
            "nonin",
            "Nonin pulse oximeter (format #2 / #7)",
            "infusion_monitor.devices.nonin:NoninCodec",
            SerialSettings(baudrate=9600, bytesize=8, parity="N", stopbits=1),
            _OXIMETER,
        ),
    )
}


def get_protocol(name: str) -> ProtocolInfo:
    try:
        return PROTOCOLS[name]
    except KeyError:
        known = ", ".join(sorted(PROTOCOLS))
        raise ConfigError(f"unknown protocol {name!r}; known protocols: {known}") from None
