"""libosdp (the C OSDP library, PyPI `libosdp` 3.x) as a reference peer for the tests.

Drives libosdp as a PD (a reader) or as a CP over a tty, such as the slave side of a pty
pair a test made with os.openpty(), and speaks JSON lines with the test process: one
object a line on stdout for everything that happens, commands one a line on stdin.

Run it with the interpreter of .venv-libosdp (tests/libosdp_env.sh makes it): libosdp's
package is named `osdp`, which clashes with another package, so this file imports nothing
of the project, only the standard library and libosdp.

    .venv-libosdp/bin/python tests/drivers/osdp/libosdp_peer.py --role pd \
        --tty /dev/pts/7 --address 1 --scbk 000102030405060708090a0b0c0d0e0f

Command line:

    --role pd|cp        which side libosdp plays
    --tty PATH          the serial device (opened raw, non-blocking, at --baud)
    --address N         the PD's address (0-126): its own for a PD, the one polled for a CP
    --baud N            9600 ... 230400, default 115200
    --scbk HEX32        secure channel base key (16 bytes, 32 hex digits); never printed
    --install-mode      PD only: accept one secure channel session with SCBK-D, in which
                        the CP is to send KEYSET
    --no-secure         no secure channel: a CP never starts one; a PD gets a random key
                        (libosdp's PD always claims AES-128 and cannot be told otherwise)
    --enforce-secure    libosdp's ENFORCE_SECURE: no SCBK-D, nothing outside a secure channel
    --mfg-reply ack|echo  PD only: answer MFG with an ACK (default) or an MFGREP echoing it
    --log-level LEVEL   libosdp's log level on stderr (error, warning, info, debug)

A PD needs --scbk, --install-mode or --no-secure (without a key libosdp would silently go
into install mode). A CP without --scbk runs without a secure channel; with one it tries
the SCBK, falls back to SCBK-D and then sends KEYSET with the SCBK (libosdp's own logic).

stdout, every role:
    {"event":"ready","role":"pd","address":1,"libosdp":"3.2.9"}
    {"event":"status","online":true,"secure":true,"scbkd":false}   on every change; secure
                 only while online; scbkd: the session runs on SCBK-D (a CP's word only).
                 A PD counts as online while it was polled in the last 8 s (libosdp's rule)
    {"event":"sent","cmd":"led"}                   a stdin command was accepted
    {"event":"completed","cmd":"led","status":"ok"}  it was delivered (ok, failed, flushed,
                                                   aborted): CP commands, PD events
    {"event":"error","detail":"...","cmd":"led"}   a stdin line was refused
    {"event":"exit","reason":"quit"|"eof"|"signal"}

PD role, each command libosdp hands the PD application, libosdp's fields with bytes in hex
(a KEYSET gives the key's length only):
    {"event":"command","kind":"led","reader":0,"led_number":0,"temporary":false,
     "control_code":1,"on_color":"red","off_color":"black","on_count":10,"off_count":0}
    kinds: led, buzzer, output, text, comset, comset_done, keyset (type, key_length),
    mfg (vendor_code, data), status (type), file_tx
stdin, PD role:
    {"cmd":"card","format":"wiegand"|"raw","bits":26,"data":"hex","reader":0}
                                                   (bits defaults to 8 per data byte)
    {"cmd":"keypad","digits":"1234#","reader":0}    ('*' is sent as 0x7F, '#' as 0x0D)
    {"cmd":"status","type":"local"|"input"|"output"|"remote","report":"hex"}
                                                   (local: tamper byte, power byte)
    {"cmd":"quit"}

CP role, what the PD reports:
    {"event":"pd_info","id":{"vendor_code":...},"capabilities":{"led_control":[1,2],...}}
                                                   each time the PD comes online, before
                                                   its status event
    {"event":"card","reader":0,"format":"wiegand","direction":0,"bits":26,"data":"hex"}
    {"event":"keypad","reader":0,"digits":"1234#","data":"hex"}
    {"event":"mfg_reply","vendor_code":...,"data":"hex"}
    {"event":"status_report","type":"local","report":"hex"}
stdin, CP role (libosdp's field names; omitted fields take the defaults in COMMANDS):
    {"cmd":"led","led_number":0,"on_color":"red","on_count":10}
    {"cmd":"buzzer","on_count":5}   {"cmd":"output","output_no":0,"control_code":2}
    {"cmd":"text","data":"HELLO"}   {"cmd":"comset","address":2,"baud_rate":9600}
    {"cmd":"keyset","scbk":"hex32"} {"cmd":"mfg","vendor_code":1193046,"data":"hex"}
    {"cmd":"status","type":"local"} {"cmd":"quit"}   (only a local status query works:
                          libosdp's Python PD cannot fill an input or output report and NAKs)
    {"cmd":"reconnect"}   start the link over: after any error (a NAK, a missed reply)
                          libosdp's CP keeps the PD offline for 300 s

It exits 0 on quit, SIGTERM, SIGINT or end of stdin.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import select
import signal
import sys
import termios
import threading
import tty
from collections.abc import Callable
from importlib.metadata import version
from typing import Any

import osdp

# Identity the PD reports (osdp_PDID): a made-up OUI, model 1 version 1, firmware 1.2.3.
PD_ID = {
    "version": 1,
    "model": 1,
    "vendor_code": 0xACCE55,
    "serial_number": 0x00C0FFEE,
    "firmware_version": 0x010203,
}
# (function code, compliance level, number of items), as osdp_PDCAP carries them. libosdp's
# PD adds and overrides four itself: CRC-16 (1, 0), AES-128 secure channel (1, 0), a receive
# buffer of 256 bytes and OSDP 2.2, whatever is given here. No inputs: the binding cannot
# fill an ISTATR/OSTATR report (its status command carries only the type), so those NAK.
PD_CAPABILITIES = [
    (osdp.Capability.OutputControl, 1, 2),
    (osdp.Capability.CardDataFormat, 1, 0),
    (osdp.Capability.LEDControl, 1, 2),
    (osdp.Capability.AudibleControl, 1, 1),
    (osdp.Capability.TextOutput, 1, 1),
    (osdp.Capability.Readers, 0, 0),
]

COMMAND_KINDS: dict[int, str] = {
    osdp.Command.LED: "led",
    osdp.Command.Buzzer: "buzzer",
    osdp.Command.Output: "output",
    osdp.Command.Text: "text",
    osdp.Command.Comset: "comset",
    osdp.Command.ComsetDone: "comset_done",
    osdp.Command.Keyset: "keyset",
    osdp.Command.Manufacturer: "mfg",
    osdp.Command.FileTransfer: "file_tx",
    osdp.Command.Status: "status",
}
EVENT_KINDS: dict[int, str] = {
    osdp.Event.CardRead: "card",
    osdp.Event.KeyPress: "keypad",
    osdp.Event.ManufacturerReply: "mfg_reply",
    osdp.Event.Status: "status_report",
}
COLORS: dict[str, int] = {
    "black": osdp.CommandLEDColor.Black,
    "red": osdp.CommandLEDColor.Red,
    "green": osdp.CommandLEDColor.Green,
    "amber": osdp.CommandLEDColor.Amber,
    "blue": osdp.CommandLEDColor.Blue,
    "magenta": osdp.CommandLEDColor.Magenta,
    "cyan": osdp.CommandLEDColor.Cyan,
    "white": osdp.CommandLEDColor.White,
}
COLOR_NAMES = {value: name for name, value in COLORS.items()}
# libosdp's PD drops ASCII card reads (osdp_FMT is deprecated), so a PD sends raw ones only.
CARD_FORMATS: dict[str, int] = {
    "raw": osdp.CardFormat.Unspecified,
    "wiegand": osdp.CardFormat.Wiegand,
}
CARD_FORMAT_NAMES = {value: name for name, value in CARD_FORMATS.items()}
CARD_FORMAT_NAMES[osdp.CardFormat.ASCII] = "ascii"
STATUS_TYPES: dict[str, int] = {
    "local": osdp.StatusReportType.Local,
    "input": osdp.StatusReportType.Input,
    "output": osdp.StatusReportType.Output,
    "remote": osdp.StatusReportType.Remote,
}
STATUS_TYPE_NAMES = {value: name for name, value in STATUS_TYPES.items()}
COMPLETIONS: dict[int, str] = {
    osdp.CompletionStatus.Ok: "ok",
    osdp.CompletionStatus.Failed: "failed",
    osdp.CompletionStatus.Flushed: "flushed",
    osdp.CompletionStatus.Aborted: "aborted",
}
CAPABILITY_NAMES: dict[int, str] = {
    osdp.Capability.ContactStatusMonitoring: "contact_status_monitoring",
    osdp.Capability.OutputControl: "output_control",
    osdp.Capability.CardDataFormat: "card_data_format",
    osdp.Capability.LEDControl: "led_control",
    osdp.Capability.AudibleControl: "audible_output",
    osdp.Capability.TextOutput: "text_output",
    osdp.Capability.TimeKeeping: "time_keeping",
    osdp.Capability.CheckCharacter: "check_character",
    osdp.Capability.CommunicationSecurity: "communication_security",
    osdp.Capability.ReceiveBufferSize: "receive_buffer_size",
    osdp.Capability.CombinedMessageSize: "combined_message_size",
    osdp.Capability.SmartCard: "smart_card",
    osdp.Capability.Readers: "readers",
    osdp.Capability.Biometrics: "biometrics",
    15: "secure_pin_entry",  # not in the binding's Capability class
    16: "osdp_version",
}
LOG_LEVELS: dict[str, int] = {
    "error": osdp.LogLevel.Error,
    "warning": osdp.LogLevel.Warning,
    "info": osdp.LogLevel.Info,
    "debug": osdp.LogLevel.Debug,
}
# OSDP keypad data is ASCII digits, with '*' as DEL (0x7F) and '#' as CR (0x0D).
KEY_TO_BYTE = {"*": 0x7F, "#": 0x0D}
BYTE_TO_KEY = {value: key for key, value in KEY_TO_BYTE.items()}

# Field kinds for stdin commands: int, bool, str, hex (bytes), color, status_type.
REQUIRED = object()
COMMANDS: dict[str, tuple[int, dict[str, tuple[str, object]]]] = {
    "led": (
        osdp.Command.LED,
        {
            "reader": ("int", 0),
            "led_number": ("int", 0),
            "temporary": ("bool", False),
            "control_code": ("int", 1),  # permanent: 1 set; temporary: 1 cancel, 2 set
            "on_color": ("color", "green"),
            "off_color": ("color", "black"),
            "on_count": ("int", 10),  # 100 ms units; libosdp NAKs a SET with both 0
            "off_count": ("int", 0),
            "timer_count": ("int", 0),  # temporary only, 100 ms units
        },
    ),
    "buzzer": (
        osdp.Command.Buzzer,
        {
            "reader": ("int", 0),
            "control_code": ("int", 2),  # 1 off, 2 default tone
            "on_count": ("int", 5),
            "off_count": ("int", 0),
            "rep_count": ("int", 1),
        },
    ),
    "output": (
        osdp.Command.Output,
        {
            "output_no": ("int", 0),
            "control_code": ("int", 2),  # 1 permanent off, 2 permanent on, 5/6 timed
            "timer_count": ("int", 0),
        },
    ),
    "text": (
        osdp.Command.Text,
        {
            "reader": ("int", 0),
            "control_code": ("int", 1),  # 1 permanent, no wrap
            "temp_time": ("int", 0),
            "offset_row": ("int", 1),
            "offset_col": ("int", 1),
            "data": ("str", REQUIRED),
        },
    ),
    "comset": (
        osdp.Command.Comset,
        {"address": ("int", REQUIRED), "baud_rate": ("int", REQUIRED)},
    ),
    "mfg": (
        osdp.Command.Manufacturer,
        {"vendor_code": ("int", REQUIRED), "data": ("hex", "")},
    ),
    "status": (osdp.Command.Status, {"type": ("status_type", "local")}),
}


class CommandError(Exception):
    """A stdin line that cannot be carried out; its text goes back as an error event."""


class Emitter:
    """Writes one JSON object a line to the stream the test reads, from any thread."""

    def __init__(self, fd: int) -> None:
        self._out = os.fdopen(fd, "w", encoding="utf-8", buffering=1)
        self._lock = threading.Lock()

    def __call__(self, event: str, **fields: Any) -> None:
        line = json.dumps({"event": event, **fields}, separators=(",", ":"))
        with self._lock:
            self._out.write(line + "\n")
            self._out.flush()

    def close(self) -> None:
        self._out.close()


def baud_constant(baud: int) -> int:
    """termios speed constant for a baud rate; ValueError where termios has none."""
    value = getattr(termios, f"B{baud}", None)
    if not isinstance(value, int):
        raise ValueError(f"unsupported baud rate {baud}")
    return value


class TtyChannel(osdp.Channel):  # type: ignore[misc]
    """libosdp's channel over a raw, non-blocking tty: it polls read() from its thread."""

    def __init__(self, path: str, baud: int) -> None:
        super().__init__()
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        try:
            tty.setraw(self.fd)
            self.set_baud(baud)
        except BaseException:
            os.close(self.fd)
            raise

    def set_baud(self, baud: int) -> None:
        speed = baud_constant(baud)
        attrs = termios.tcgetattr(self.fd)
        attrs[4] = attrs[5] = speed
        termios.tcsetattr(self.fd, termios.TCSANOW, attrs)

    def read(self, max_bytes: int) -> bytes:
        try:
            return os.read(self.fd, max_bytes)
        except (BlockingIOError, InterruptedError):
            return b""
        except OSError:  # EIO: the pty's master side is closed
            return b""

    def write(self, buf: bytes) -> int:
        try:
            return os.write(self.fd, buf)
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError:
            return -1

    def flush(self) -> None:
        # libosdp calls this before each send to drop stale input, as on half-duplex RS-485.
        with contextlib.suppress(termios.error):
            termios.tcflush(self.fd, termios.TCIFLUSH)

    def close(self) -> None:
        os.close(self.fd)


def hexbytes(text: object, field: str) -> bytes:
    if not isinstance(text, str):
        raise CommandError(f"{field} must be a hex string")
    try:
        return bytes.fromhex(text)
    except ValueError as exc:
        raise CommandError(f"{field} is not hex") from exc


def convert_field(kind: str, name: str, value: object) -> object:
    """A JSON field as libosdp's dict wants it; CommandError when it does not fit."""
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise CommandError(f"{name} must be an integer")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise CommandError(f"{name} must be true or false")
        return value
    if kind == "str":
        if not isinstance(value, str):
            raise CommandError(f"{name} must be a string")
        return value
    if kind == "hex":
        return hexbytes(value, name)
    if kind == "color":
        if isinstance(value, str) and value in COLORS:
            return COLORS[value]
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise CommandError(f"{name} must be one of {sorted(COLORS)} or an integer")
    if kind == "status_type":
        if isinstance(value, str) and value in STATUS_TYPES:
            return STATUS_TYPES[value]
        raise CommandError(f"{name} must be one of {sorted(STATUS_TYPES)}")
    raise AssertionError(kind)


def build_fields(spec: dict[str, tuple[str, object]], msg: dict[str, Any]) -> dict[str, Any]:
    unknown = set(msg) - set(spec) - {"cmd"}
    if unknown:
        raise CommandError(f"unknown fields {sorted(unknown)}")
    fields: dict[str, Any] = {}
    for name, (kind, default) in spec.items():
        if name in msg:
            fields[name] = convert_field(kind, name, msg[name])
        elif default is REQUIRED:
            raise CommandError(f"{name} is required")
        else:
            fields[name] = convert_field(kind, name, default)
    return fields


def to_json_fields(data: dict[str, Any], skip: tuple[str, ...]) -> dict[str, Any]:
    """libosdp's dict for JSON: bytes as hex, LED colours by name."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in skip:
            continue
        if isinstance(value, bytes | bytearray):
            out[key] = bytes(value).hex()
        elif key in ("on_color", "off_color"):
            out[key] = name_of(COLOR_NAMES, value)
        else:
            out[key] = value
    return out


def name_of(names: dict[int, str], value: Any) -> Any:
    """The name libosdp's number has in names, or the value itself when it has none."""
    return names.get(value, value) if isinstance(value, int) else value


def keypad_text(data: bytes) -> str:
    return "".join(BYTE_TO_KEY.get(b, chr(b)) for b in data)


class Peer:
    """The main loop both roles share: stdin commands, libosdp's callbacks, status changes.

    libosdp calls back from the refresh thread of its Python wrapper while holding the
    wrapper's lock, so the callbacks only post to a queue and wake this loop, which calls
    into libosdp and writes the events: their order on stdout is the order they happened.
    """

    role = ""

    def __init__(self, args: argparse.Namespace, emit: Emitter, channel: TtyChannel) -> None:
        self.args = args
        self.emit = emit
        self.channel = channel
        self.posted: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        self.stop_reason: str | None = None
        self.state = (False, False, False)  # online, secure, with SCBK-D

    def post(self, action: Callable[[], None]) -> None:
        """Runs action on the main loop; safe from libosdp's thread."""
        self.posted.put(action)
        with contextlib.suppress(BlockingIOError):  # full of wake-ups already
            os.write(self.wake_w, b"!")

    def request_stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
        self.post(lambda: None)

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def current_state(self) -> tuple[bool, bool, bool]:
        raise NotImplementedError

    def handle(self, msg: dict[str, Any]) -> None:
        raise NotImplementedError

    def report_state(self) -> None:
        state = self.current_state()
        if state != self.state:
            self.state = state
            online, secure, scbkd = state
            self.emit("status", online=online, secure=secure, scbkd=scbkd)

    def run(self) -> str:
        self.start()
        self.emit("ready", role=self.role, address=self.args.address, libosdp=version("libosdp"))
        stdin_fd = sys.stdin.fileno()
        pending = b""
        stdin_open = True
        try:
            while self.stop_reason is None:
                fds = [self.wake_r, stdin_fd] if stdin_open else [self.wake_r]
                ready, _, _ = select.select(fds, [], [], 0.01)
                if self.wake_r in ready:
                    with contextlib.suppress(BlockingIOError):
                        os.read(self.wake_r, 4096)
                self.report_state()
                while True:
                    try:
                        action = self.posted.get_nowait()
                    except queue.Empty:
                        break
                    action()
                if stdin_open and stdin_fd in ready:
                    chunk = os.read(stdin_fd, 65536)
                    if not chunk:
                        stdin_open = False
                        chunk = b"\n"  # a last line without its newline still counts
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    for line in lines:
                        if line.strip() and self.stop_reason is None:
                            self.dispatch(line)
                    if not stdin_open:
                        self.request_stop("eof")
        finally:
            self.stop()
        return self.stop_reason or "eof"

    def dispatch(self, line: bytes) -> None:
        cmd: object = None
        try:
            msg = json.loads(line)
            if not isinstance(msg, dict) or not isinstance(msg.get("cmd"), str):
                raise CommandError('a command is a JSON object with a "cmd" string')
            cmd = msg["cmd"]
            if cmd == "quit":
                self.request_stop("quit")
                return
            self.handle(msg)
        except json.JSONDecodeError as exc:
            self.emit("error", detail=f"not JSON: {exc}")
        except CommandError as exc:
            self.emit("error", detail=str(exc), cmd=cmd)
        except Exception as exc:  # libosdp's own errors (TypeError, ValueError, SystemError)
            self.emit("error", detail=f"{type(exc).__name__}: {exc}", cmd=cmd)


class PdPeer(Peer):
    """libosdp as the PD: reports what the CP commands, sends card reads and keys."""

    role = "pd"

    def __init__(self, args: argparse.Namespace, emit: Emitter, channel: TtyChannel) -> None:
        super().__init__(args, emit, channel)
        flags = []
        if args.install_mode:
            flags.append(osdp.LibFlag.InstallMode)
        if args.enforce_secure:
            flags.append(osdp.LibFlag.EnforceSecure)
        # libosdp's PD always claims the secure channel and, without a key, goes into install
        # mode: a key nobody knows is how it keeps every secure channel from coming up.
        scbk = os.urandom(16) if args.no_secure else args.scbk
        info = osdp.PDInfo(args.address, channel, scbk=scbk, flags=flags, id=osdp.PdId(**PD_ID))
        self.pd = osdp.PeripheralDevice(
            info,
            osdp.PDCapabilities(PD_CAPABILITIES),
            log_level=LOG_LEVELS[args.log_level],
            command_handler=self.on_command,
            event_completion_handler=self.on_event_completion,
        )

    def start(self) -> None:
        self.pd.start()

    def stop(self) -> None:
        self.pd.stop()

    def report_state(self) -> None:
        super().report_state()
        # The wrapper queues every command for its own get_command(); nobody reads that here.
        while self.pd.get_command(timeout=-1) is not None:
            pass

    def current_state(self) -> tuple[bool, bool, bool]:
        online = bool(self.pd.is_online())
        secure = online and bool(self.pd.is_sc_active())
        return (online, secure, False)

    # libosdp's thread, with its lock held: post only.
    def on_command(self, command: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
        kind = COMMAND_KINDS.get(command.get("command", -1), str(command.get("command")))
        fields = to_json_fields(
            command, skip=("command", "data") if kind == "keyset" else ("command",)
        )
        if kind == "keyset":
            fields["key_length"] = len(command.get("data", b""))
        elif kind == "status":
            fields["type"] = name_of(STATUS_TYPE_NAMES, fields.get("type"))
        self.post(lambda: self.emit("command", kind=kind, **fields))
        if kind == "comset_done":
            self.post(lambda: self.apply_baud(command.get("baud_rate", 0)))
        if kind == "mfg" and self.args.mfg_reply == "echo":
            return 1, None  # libosdp answers MFGREP with the command's own data
        return 0, None

    def on_event_completion(self, event: dict[str, Any], status: int) -> None:
        kind = EVENT_KINDS.get(event.get("event", -1), str(event.get("event")))
        name = {"card": "card", "keypad": "keypad", "status_report": "status"}.get(kind, kind)
        done = COMPLETIONS.get(status, str(status))
        self.post(lambda: self.emit("completed", cmd=name, status=done))

    def apply_baud(self, baud: int) -> None:
        try:
            self.channel.set_baud(baud)
        except (ValueError, termios.error) as exc:
            self.emit("error", detail=f"COMSET baud rate not applied: {exc}", cmd="comset")

    def handle(self, msg: dict[str, Any]) -> None:
        cmd = msg["cmd"]
        if cmd == "card":
            event = self.card_event(msg)
        elif cmd == "keypad":
            event = self.keypad_event(msg)
        elif cmd == "status":
            fields = build_fields({"type": ("status_type", "local"), "report": ("hex", "")}, msg)
            event = {"event": osdp.Event.Status, **fields}
        else:
            raise CommandError(f"unknown command for a PD: {cmd}")
        if not self.pd.submit_event(event):
            raise CommandError("libosdp refused the event (queue full?)")
        self.emit("sent", cmd=cmd)

    @staticmethod
    def card_event(msg: dict[str, Any]) -> dict[str, Any]:
        spec = {
            "format": ("str", "wiegand"),
            "data": ("hex", REQUIRED),
            "bits": ("int", -1),
            "reader": ("int", 0),
            "direction": ("int", 0),
        }
        fields = build_fields(spec, msg)
        if fields["format"] not in CARD_FORMATS:
            raise CommandError(f"format must be one of {sorted(CARD_FORMATS)}")
        data: bytes = fields["data"]
        bits = fields["bits"] if fields["bits"] >= 0 else 8 * len(data)
        if (bits + 7) // 8 != len(data):
            raise CommandError(f"{bits} bits do not fit {len(data)} bytes of data")
        return {
            "event": osdp.Event.CardRead,
            "reader_no": fields["reader"],
            "format": CARD_FORMATS[fields["format"]],
            "direction": fields["direction"],
            "length": bits,
            "data": data,
        }

    @staticmethod
    def keypad_event(msg: dict[str, Any]) -> dict[str, Any]:
        fields = build_fields({"digits": ("str", REQUIRED), "reader": ("int", 0)}, msg)
        digits: str = fields["digits"]
        if not digits or any(not (c.isdigit() or c in KEY_TO_BYTE) for c in digits):
            raise CommandError("digits must be 0-9, '*' and '#'")
        data = bytes(KEY_TO_BYTE.get(c, ord(c)) for c in digits)
        return {"event": osdp.Event.KeyPress, "reader_no": fields["reader"], "data": data}


class CpPeer(Peer):
    """libosdp as the CP of one PD: reports what the PD sends, sends what stdin asks."""

    role = "cp"

    def __init__(self, args: argparse.Namespace, emit: Emitter, channel: TtyChannel) -> None:
        super().__init__(args, emit, channel)
        flags = [osdp.LibFlag.EnableNotification]
        if args.enforce_secure:
            flags.append(osdp.LibFlag.EnforceSecure)
        scbk = None if args.no_secure else args.scbk
        info = osdp.PDInfo(args.address, channel, scbk=scbk, flags=flags)
        self.cp = osdp.ControlPanel(
            [info],
            log_level=LOG_LEVELS[args.log_level],
            event_handler=self.on_event,
            command_completion_handler=self.on_command_completion,
        )
        self.scbkd = False
        self.reconnecting = False

    def start(self) -> None:
        self.cp.start()

    def stop(self) -> None:
        self.cp.stop()

    def current_state(self) -> tuple[bool, bool, bool]:
        online = bool(self.cp.is_online(self.args.address))
        secure = online and bool(self.cp.is_sc_active(self.args.address))
        return (online, secure, secure and self.scbkd)

    def report_state(self) -> None:
        was_online = self.state[0]
        state = self.current_state()
        if state[0] and not was_online:
            self.emit_pd_info()
        super().report_state()
        # libosdp disables the PD in its own thread; enabling it starts over from INIT.
        if self.reconnecting and not self.cp.is_pd_enabled(self.args.address):
            self.reconnecting = False
            self.cp.enable_pd(self.args.address)
        # The wrapper queues every event for its own get_event(); nobody reads that here.
        while self.cp.get_event(self.args.address, timeout=-1) is not None:
            pass

    def emit_pd_info(self) -> None:
        address = self.args.address
        pd_id = self.cp.get_pd_id(address)
        capabilities = {}
        for code, name in CAPABILITY_NAMES.items():
            level, items = self.cp.check_capability(address, code)
            if level or items:
                capabilities[name] = [level, items]
        self.emit("pd_info", id=dict(vars(pd_id)), capabilities=capabilities)

    # libosdp's thread, with its lock held: post only.
    def on_event(self, pd: int, event: dict[str, Any]) -> int:
        kind = event.get("event")
        if kind == osdp.Event.Notification:
            if event.get("type") == osdp.EventNotification.SecureChannelStatus:
                self.scbkd = bool(event.get("arg0")) and bool(event.get("arg1"))
            self.post(lambda: None)  # report_state() on the main loop reads the new state
            return 0
        self.post(lambda: self.emit_pd_event(event))
        return 0

    def on_command_completion(self, address: int, command: dict[str, Any], status: int) -> None:
        kind = COMMAND_KINDS.get(command.get("command", -1), str(command.get("command")))
        done = COMPLETIONS.get(status, str(status))
        self.post(lambda: self.emit("completed", cmd=kind, status=done))
        if kind == "comset" and done == "ok":
            self.post(lambda: self.apply_baud(command.get("baud_rate", 0)))

    def apply_baud(self, baud: int) -> None:
        try:
            self.channel.set_baud(baud)
        except (ValueError, termios.error) as exc:
            self.emit("error", detail=f"COMSET baud rate not applied: {exc}", cmd="comset")

    def emit_pd_event(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        data = bytes(event.get("data", b""))
        if kind == osdp.Event.CardRead:
            fmt = event.get("format")
            fields: dict[str, Any] = {
                "reader": event.get("reader_no"),
                "format": name_of(CARD_FORMAT_NAMES, fmt),
                "direction": event.get("direction"),
                "data": data.hex(),
            }
            if "length" in event:
                fields["bits"] = event["length"]
            self.emit("card", **fields)
        elif kind == osdp.Event.KeyPress:
            self.emit(
                "keypad", reader=event.get("reader_no"), digits=keypad_text(data), data=data.hex()
            )
        elif kind == osdp.Event.ManufacturerReply:
            self.emit("mfg_reply", vendor_code=event.get("vendor_code"), data=data.hex())
        elif kind == osdp.Event.Status:
            self.emit(
                "status_report",
                type=name_of(STATUS_TYPE_NAMES, event.get("type")),
                report=bytes(event.get("report", b"")).hex(),
            )
        else:
            self.emit("pd_event", kind=kind, **to_json_fields(event, skip=("event",)))

    def handle(self, msg: dict[str, Any]) -> None:
        cmd = msg["cmd"]
        if cmd == "reconnect":
            # After any error (a NAK, a missed reply) libosdp's CP keeps the PD offline for
            # 300 s; disabling and enabling the PD starts it over at once.
            build_fields({}, msg)
            if self.cp.is_pd_enabled(self.args.address):
                self.cp.disable_pd(self.args.address)
            self.reconnecting = True
            self.emit("sent", cmd=cmd)
            return
        if cmd == "keyset":
            fields = build_fields({"scbk": ("hex", REQUIRED)}, msg)
            if len(fields["scbk"]) != 16:
                raise CommandError("scbk must be 16 bytes")
            command = {"command": osdp.Command.Keyset, "type": 1, "data": fields["scbk"]}
        elif cmd in COMMANDS:
            code, spec = COMMANDS[cmd]
            command = {"command": code, **build_fields(spec, msg)}
        else:
            raise CommandError(f"unknown command for a CP: {cmd}")
        if not self.cp.is_online(self.args.address):
            raise CommandError("the PD is not online")
        if not self.cp.submit_command(self.args.address, command):
            raise CommandError("libosdp refused the command (see its log on stderr)")
        self.emit("sent", cmd=cmd)


def scbk_arg(text: str) -> bytes:
    try:
        key = bytes.fromhex(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError("not hex") from exc
    if len(key) != 16:
        raise argparse.ArgumentTypeError("an SCBK is 16 bytes (32 hex digits)")
    return key


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--role", choices=("pd", "cp"), required=True)
    parser.add_argument("--tty", required=True, help="serial device, e.g. a pty's slave")
    parser.add_argument("--address", type=int, required=True, help="the PD's address, 0-126")
    parser.add_argument("--baud", type=int, default=115200)
    parser.add_argument("--scbk", type=scbk_arg, help="secure channel base key, 32 hex digits")
    parser.add_argument("--install-mode", action="store_true", help="PD: accept SCBK-D once")
    parser.add_argument("--no-secure", action="store_true", help="no secure channel")
    parser.add_argument("--enforce-secure", action="store_true")
    parser.add_argument("--mfg-reply", choices=("ack", "echo"), default="ack")
    parser.add_argument("--log-level", choices=sorted(LOG_LEVELS), default="info")
    args = parser.parse_args(argv)
    if not 0 <= args.address <= 126:
        parser.error("--address must be 0-126")
    try:
        baud_constant(args.baud)
    except ValueError as exc:
        parser.error(str(exc))
    if args.no_secure and (args.scbk is not None or args.install_mode):
        parser.error("--no-secure goes with neither --scbk nor --install-mode")
    if args.role == "pd" and not (args.scbk or args.install_mode or args.no_secure):
        parser.error("a PD needs --scbk, --install-mode or --no-secure")
    if args.role == "cp" and args.install_mode:
        parser.error("--install-mode is a PD's: a CP with --scbk falls back to SCBK-D itself")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # libosdp's wrapper print()s callback errors and C code may write to fd 1: the events
    # get a descriptor of their own and everything else goes to stderr.
    emit = Emitter(os.dup(sys.stdout.fileno()))
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    try:
        channel = TtyChannel(args.tty, args.baud)
    except (OSError, termios.error) as exc:
        emit("error", detail=f"cannot open {args.tty}: {exc}")
        print(f"libosdp_peer: cannot open {args.tty}: {exc}", file=sys.stderr)
        return 2
    peer: Peer = PdPeer(args, emit, channel) if args.role == "pd" else CpPeer(args, emit, channel)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: peer.request_stop("signal"))
    try:
        reason = peer.run()
    finally:
        channel.close()
    emit("exit", reason=reason)
    emit.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
