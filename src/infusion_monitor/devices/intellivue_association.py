"""Philips IntelliVue association control: the session-layer messages around the data export.

Both sides of the wire are described here (the app's codec and the simulator share it). Facts,
not code, from: xeonfusion/VSCaptureMP ``DataConstants`` (the association request bytes, which
``build_association_request`` reproduces exactly), mindleaving/patient-monitor-datalogger
(``SessionData``, ``PresentationHeader``, ``PresentationTrailer``: accept, refuse, release and
abort), OpenICE ``AssociationProtocolImpl`` (session type, length, ``[id, length, data]``
parameters, then ``C1 <length>`` and the presentation data) and part-cw/LNhealth
``ivue-request.scm`` and ``parse_session.scm`` (the session types; the release request).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from infusion_monitor.devices.intellivue_frames import (
    Cursor,
    MessageError,
    attribute_list,
    parse_attribute_list,
)

SI_ASSOC_REQUEST = 0x0D  # CN_SPDU
SI_ACCEPT = 0x0E  # AC_SPDU
SI_REFUSE = 0x0C  # RF_SPDU
SI_RELEASE_REQUEST = 0x09  # FN_SPDU ("finish")
SI_RELEASE_RESPONSE = 0x0A  # DN_SPDU ("disconnect")
SI_ABORT = 0x19  # AB_SPDU
SI_DATA = 0xE1  # first byte of a data-export message (session id 0xE100)
PRESENTATION_TAG = 0xC1
PI_REFUSE_REASON = 0x32  # the refuse's one session parameter

_CONNECT_PARAMS = ((0x05, bytes.fromhex("1301001601028000")), (0x14, bytes.fromhex("0002")))
_AARQ_HEADER = bytes.fromhex(
    "3180a0808001010000a280a003000001a4803080020101060452010001308006025101000000"
    "003080020102060c2a8648ce14020100000001013080060c2a8648ce14020100000002010000"
    "0000000061803080020101a0806080a180060c2a8648ce14020100000003010000be80288006"
    "0c2a8648ce140201000000010102010281"
)
_AARE_HEADER = bytes.fromhex(
    "3180a0808001010000a280a003000001a58030808001008102510100003080800100810c2a86"
    "48ce14020100000002010000000061803080020101a0806180a180060c2a8648ce1402010000"
    "0003010000a203020100a305a103020100be80288002010281"
)
_ASSOC_TRAILER = bytes(16)
_USER_DATA_MARK = bytes.fromhex("be802880")  # the last construct before the user data
_RELEASE_HEAD = bytes.fromhex("61803080020101a080")
_ABORT_PRESENTATION = bytes.fromhex(
    "a080a0803080020101060251010000000061803080020101a080648080010100000000000000"
    "000000"
)

MDDL_VERSION1 = 0x80000000
NOMEN_VERSION = 0x40000000
SYST_CLIENT = 0x80000000
SYST_SERVER = 0x00800000
COLD_START = 0x20000000
NOM_POLL_PROFILE_SUPPORT = 0x0001
NOM_ATTR_POLL_PROFILE_EXT = 0xF001
POLL_PROFILE_REV_0 = 0x80000000
P_OPT_DYN_CREATE_DELETE = 0x60000000  # P_OPT_DYN_CREATE_OBJECTS | P_OPT_DYN_DELETE_OBJECTS
POLL_EXT_PERIOD_NU_1SEC = 0x80000000  # "1 sec real-time numerics" in extended polls
RS232_MTU = 1000


def _li(n: int) -> bytes:
    """Session length indicator: one byte, or FF and a u16 from 255 on."""
    return bytes([n]) if n < 255 else b"\xff" + struct.pack(">H", n)


def _read_li(c: Cursor) -> int:
    n = c.u8()
    return c.u16() if n == 0xFF else n


def _asn_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    if n <= 0xFF:
        return bytes([0x81, n])
    return b"\x82" + struct.pack(">H", n)


def _session(si: int, params: Sequence[tuple[int, bytes]], presentation: bytes | None) -> bytes:
    body = b"".join(bytes([pi]) + _li(len(d)) + d for pi, d in params)
    if presentation is not None:
        body += bytes([PRESENTATION_TAG]) + _li(len(presentation)) + presentation
    return bytes([si]) + _li(len(body)) + body


@dataclass(frozen=True, slots=True)
class UserInfo:
    """MDSEUserInfoStd: who speaks, and the poll profile it offers or accepts."""

    protocol_version: int = MDDL_VERSION1
    system_type: int = SYST_CLIENT
    min_poll_ticks: int | None = 8000  # RelativeTime, 1/8 ms: 1 s
    max_mtu_rx: int = RS232_MTU
    max_mtu_tx: int = RS232_MTU
    ext_options: int | None = POLL_EXT_PERIOD_NU_1SEC

    def encode(self) -> bytes:
        head = struct.pack(">5I", self.protocol_version, NOMEN_VERSION, 0, self.system_type,
                           COLD_START)
        ext = struct.pack(">IHH", self.ext_options or 0, 0, 0)
        packages = attribute_list([(NOM_ATTR_POLL_PROFILE_EXT, ext)])
        profile = struct.pack(">6I", POLL_PROFILE_REV_0, self.min_poll_ticks or 0,
                              self.max_mtu_rx, self.max_mtu_tx, 0xFFFFFFFF,
                              P_OPT_DYN_CREATE_DELETE) + packages
        return head + attribute_list([]) + attribute_list([(NOM_POLL_PROFILE_SUPPORT, profile)])

    @classmethod
    def decode(cls, data: bytes) -> UserInfo:
        c = Cursor(data)
        version, _nomen, _units, system_type, _startup = (c.u32() for _ in range(5))
        parse_attribute_list(c)  # option list
        profile = dict(parse_attribute_list(c)).get(NOM_POLL_PROFILE_SUPPORT)
        if profile is None:
            return cls(version, system_type, None, 0, 0, None)
        p = Cursor(profile)
        _rev, min_poll, mtu_rx, mtu_tx, _bw, _opts = (p.u32() for _ in range(6))
        ext = dict(parse_attribute_list(p)).get(NOM_ATTR_POLL_PROFILE_EXT)
        ext_options = Cursor(ext).u32() if ext is not None else None
        return cls(version, system_type, min_poll, mtu_rx, mtu_tx, ext_options)


def build_association_request(info: UserInfo | None = None) -> bytes:
    """The client's association request (session 0x0D), as VSCaptureMP and LNhealth send it."""
    user = (info or UserInfo()).encode()
    presentation = _AARQ_HEADER + _asn_length(len(user)) + user + _ASSOC_TRAILER
    return _session(SI_ASSOC_REQUEST, _CONNECT_PARAMS, presentation)


def build_association_accept(info: UserInfo | None = None) -> bytes:
    """The monitor's accept (0x0E): the same session data, its own poll profile."""
    user = (info or UserInfo(system_type=SYST_SERVER)).encode()
    presentation = _AARE_HEADER + _asn_length(len(user)) + user + _ASSOC_TRAILER
    return _session(SI_ACCEPT, _CONNECT_PARAMS, presentation)


def build_refuse(reason: int = 0) -> bytes:
    """Refuse (0x0C): one session parameter, the reason; no presentation data (mindleaving)."""
    return _session(SI_REFUSE, [(PI_REFUSE_REASON, bytes([reason & 0xFF]))], None)


def build_release_request() -> bytes:
    return _session(SI_RELEASE_REQUEST, [], _RELEASE_HEAD + b"\x62\x80\x80\x01" + bytes(9))


def build_release_response() -> bytes:
    return _session(SI_RELEASE_RESPONSE, [], _RELEASE_HEAD + b"\x63\x80\x80\x01" + bytes(9))


def build_abort() -> bytes:
    return _session(SI_ABORT, [(0x11, b"\x03")], _ABORT_PRESENTATION)


@dataclass(frozen=True, slots=True)
class AssociationMessage:
    """A session-layer message: its type, parameters, presentation data and user info."""

    kind: int
    params: tuple[tuple[int, bytes], ...]
    presentation: bytes | None
    user_info: UserInfo | None
    problem: str = ""  # why the user info could not be read, if it could not

    @property
    def refuse_reason(self) -> int | None:
        data = dict(self.params).get(PI_REFUSE_REASON)
        return data[0] if data else None


def _user_data(presentation: bytes) -> bytes:
    """The MDSEUserInfoStd bytes after the presentation header (OpenICE's "advance past")."""
    mark = presentation.rfind(_USER_DATA_MARK)
    tag = presentation.find(b"\x81", mark + len(_USER_DATA_MARK)) if mark >= 0 else -1
    if tag < 0:
        raise MessageError("no user data in the presentation header")
    c = Cursor(presentation, tag + 1)
    n = c.u8()
    if n == 0x81:
        n = c.u8()
    elif n == 0x82:
        n = c.u16()
    elif n > 0x80:
        raise MessageError(f"unsupported ASN.1 length form {n:02X}")
    return c.take(n)


def parse_association(payload: bytes) -> AssociationMessage:
    """Split a session-layer message; raises MessageError if its lengths do not add up."""
    c = Cursor(payload)
    kind = c.u8()
    body = c.sub(_read_li(c))
    params: list[tuple[int, bytes]] = []
    presentation: bytes | None = None
    while body.remaining:
        pi = body.u8()
        data = body.take(_read_li(body))
        if pi == PRESENTATION_TAG:
            presentation = data
            break
        params.append((pi, data))
    user_info, problem = None, ""
    if kind in (SI_ASSOC_REQUEST, SI_ACCEPT) and presentation is not None:
        try:
            user_info = UserInfo.decode(_user_data(presentation))
        except MessageError as exc:
            problem = str(exc)
    return AssociationMessage(kind, tuple(params), presentation, user_info, problem)


def association_request_problem(msg: AssociationMessage) -> str:
    """"" for a well-formed association request from a client, else what is wrong with it."""
    if msg.kind != SI_ASSOC_REQUEST:
        return f"not an association request (session type {msg.kind:02X})"
    if msg.params != _CONNECT_PARAMS:
        return "unexpected session data"
    if msg.presentation is None or not msg.presentation.startswith(_AARQ_HEADER):
        return "unexpected presentation header"
    if not msg.presentation.endswith(_ASSOC_TRAILER):
        return "missing presentation trailer"
    info = msg.user_info
    if info is None:
        return f"unreadable user info ({msg.problem})"
    if info.protocol_version != MDDL_VERSION1 or info.system_type != SYST_CLIENT:
        return "not a client speaking MDDL version 1"
    if info.min_poll_ticks is None:
        return "no poll profile"
    return ""
