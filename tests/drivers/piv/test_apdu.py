"""APDU layer: encoding vectors, status words as typed errors, chaining and GET RESPONSE."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.apdu import Command, Response, error_for_sw, exchange, parse_response
from drivers.errors import (
    ApduError,
    AuthenticationBlocked,
    CardError,
    DriverError,
    FileNotFound,
    InsNotSupported,
    MalformedResponse,
    SecurityStatusNotSatisfied,
    WrongData,
    WrongLength,
    WrongPin,
)
from drivers.transport import CardTransport
from simulators.card import PIV_AID, ProbeCard


class ScriptedTransport(CardTransport):
    """Replays (expected command, response) pairs; a command off script fails the test."""

    def __init__(self, script: Sequence[tuple[str, str]]) -> None:
        self.script = [(bytes.fromhex(c), bytes.fromhex(r)) for c, r in script]
        self.sent: list[bytes] = []
        self.closed = False

    async def transmit(self, apdu: bytes) -> bytes:
        self.sent.append(apdu)
        assert self.script, f"unexpected command {apdu.hex()}"
        expected, response = self.script.pop(0)
        assert apdu == expected, f"sent {apdu.hex()}, script expected {expected.hex()}"
        return response

    async def close(self) -> None:
        self.closed = True


class CardTransportLoop(CardTransport):
    """Runs a virtual card in memory, so exchange() meets the same card pcscd would."""

    def __init__(self, card: ProbeCard) -> None:
        self.card = card

    async def transmit(self, apdu: bytes) -> bytes:
        return self.card.process(apdu)

    async def close(self) -> None:
        pass


# --- encoding ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "encoded"),
    [
        # case 1: header only
        (Command(0x00, 0xA4, 0x04, 0x00), "00a40400"),
        # case 2 short: Le only; 256 encodes as 00
        (Command(0x00, 0xC0, 0, 0, le=16), "00c0000010"),
        (Command(0x00, 0xC0, 0, 0, le=256), "00c0000000"),
        # case 3 short: Lc + data
        (Command(0x00, 0x20, 0x00, 0x80, bytes(8)), "0020008008" + "00" * 8),
        # case 4 short: Lc + data + Le
        (
            Command(0x00, 0xA4, 0x04, 0x00, bytes.fromhex("a000000308"), 256),
            "00a4040005a00000030800",
        ),
        (Command(0x00, 0xCB, 0x3F, 0xFF, b"\x5c", 1), "00cb3fff015c01"),
    ],
)
def test_short_encoding_follows_iso7816_cases(command: Command, encoded: str) -> None:
    assert command.encode() == bytes.fromhex(encoded)


def test_extended_lc_is_three_bytes_and_le_two_when_lc_present() -> None:
    data = bytes(300)
    encoded = Command(0x00, 0xDB, 0x3F, 0xFF, data, 0x1234).encode()
    assert encoded[:4] == bytes.fromhex("00db3fff")
    assert encoded[4:7] == bytes.fromhex("00012c")
    assert encoded[7:-2] == data
    assert encoded[-2:] == bytes.fromhex("1234")


def test_extended_le_alone_is_three_bytes_and_65536_encodes_as_zero() -> None:
    assert Command(0, 0xB0, 0, 0, le=65536).encode() == bytes.fromhex("00b00000000000")
    assert Command(0, 0xB0, 0, 0, le=257).encode() == bytes.fromhex("00b00000000101")


def test_extended_can_be_forced_for_small_lengths() -> None:
    encoded = Command(0, 0xA4, 4, 0, b"\x01\x02", 256).encode(extended=True)
    assert encoded == bytes.fromhex("00a4040000000201020100")


def test_header_only_command_is_four_bytes_even_extended() -> None:
    assert Command(0, 0x44, 0, 0).encode(extended=True) == bytes.fromhex("00440000")


def test_short_encoding_refuses_lengths_that_do_not_fit() -> None:
    with pytest.raises(ValueError, match="short"):
        Command(0, 0xDB, 0, 0, bytes(256)).encode(extended=False)
    with pytest.raises(ValueError, match="short"):
        Command(0, 0xB0, 0, 0, le=257).encode(extended=False)


@pytest.mark.parametrize(
    "kwargs",
    [{"cla": 256}, {"ins": -1}, {"le": 0}, {"le": 65537}, {"data": bytes(65536)}],
)
def test_command_rejects_out_of_range_fields(kwargs: dict[str, object]) -> None:
    fields: dict[str, object] = {"cla": 0, "ins": 0xA4, "p1": 0, "p2": 0, **kwargs}
    with pytest.raises(ValueError):
        Command(**fields)  # type: ignore[arg-type]


# --- responses and status words ------------------------------------------------------------


def test_parse_response_splits_data_and_status_word() -> None:
    response = parse_response(bytes.fromhex("0102039000"))
    assert response == Response(b"\x01\x02\x03", 0x90, 0x00)
    assert response.sw == 0x9000
    assert parse_response(b"\x6a\x82").data == b""


@pytest.mark.parametrize("raw", [b"", b"\x90"])
def test_response_without_status_word_is_malformed_not_index_error(raw: bytes) -> None:
    with pytest.raises(MalformedResponse):
        parse_response(raw)


@pytest.mark.parametrize(
    ("sw", "error"),
    [
        (0x6A82, FileNotFound),
        (0x6982, SecurityStatusNotSatisfied),
        (0x6983, AuthenticationBlocked),
        (0x6A80, WrongData),
        (0x6D00, InsNotSupported),
        (0x6700, WrongLength),
        (0x63C2, WrongPin),
        (0x6F00, CardError),
        (0x6A86, CardError),
    ],
)
def test_status_words_map_to_typed_errors(sw: int, error: type[CardError]) -> None:
    exc = error_for_sw(sw)
    assert type(exc) is error
    assert exc.sw == sw
    assert isinstance(exc, DriverError)
    assert f"{sw:04X}" in str(exc)


def test_wrong_pin_counts_tries_left() -> None:
    exc = error_for_sw(0x63C2)
    assert isinstance(exc, WrongPin)
    assert exc.tries_left == 2
    assert isinstance(error_for_sw(0x63C0), WrongPin)


def test_raise_for_status_passes_9000_and_raises_others() -> None:
    ok = Response(b"x", 0x90, 0x00)
    assert ok.raise_for_status() is ok
    with pytest.raises(FileNotFound):
        Response(b"", 0x6A, 0x82).raise_for_status()


# --- exchange --------------------------------------------------------------------------------


async def test_exchange_returns_data_on_9000() -> None:
    transport = ScriptedTransport([("00a4040005a00000030800", "61119000")])
    response = await exchange(transport, Command(0, 0xA4, 4, 0, PIV_AID[:5], 256))
    assert response == Response(b"\x61\x11", 0x90, 0x00)


async def test_exchange_raises_the_typed_error_for_the_final_status() -> None:
    transport = ScriptedTransport([("0020008008" + "ff" * 8, "63c1")])
    with pytest.raises(WrongPin) as caught:
        await exchange(transport, Command(0, 0x20, 0, 0x80, b"\xff" * 8))
    assert caught.value.tries_left == 1


async def test_exchange_can_return_the_error_status_unchecked() -> None:
    transport = ScriptedTransport([("00a4040001aa", "6a82")])
    response = await exchange(transport, Command(0, 0xA4, 4, 0, b"\xaa"), check=False)
    assert response.sw == 0x6A82


async def test_get_response_loop_assembles_61xx_frames() -> None:
    transport = ScriptedTransport(
        [
            ("00cb3fff055c035fc10200", "aa" * 256 + "6100"),
            ("00c0000000", "bb" * 256 + "6120"),
            ("00c0000020", "cc" * 32 + "9000"),
        ]
    )
    command = Command(0, 0xCB, 0x3F, 0xFF, bytes.fromhex("5c035fc102"), 256)
    response = await exchange(transport, command)
    assert response.data == b"\xaa" * 256 + b"\xbb" * 256 + b"\xcc" * 32
    assert response.sw == 0x9000
    assert transport.script == []


async def test_6cxx_resends_with_the_length_the_card_asked_for() -> None:
    transport = ScriptedTransport([("00b0000010", "6c05"), ("00b0000005", "01020304059000")])
    response = await exchange(transport, Command(0, 0xB0, 0, 0, le=16))
    assert response.data == bytes.fromhex("0102030405")


async def test_6cxx_during_get_response_resends_the_get_response() -> None:
    transport = ScriptedTransport(
        [("00ca000000", "01" + "6104"), ("00c0000004", "6c02"), ("00c0000002", "02039000")]
    )
    response = await exchange(transport, Command(0, 0xCA, 0, 0, le=256))
    assert response.data == b"\x01\x02\x03"


async def test_long_data_goes_as_chained_short_commands() -> None:
    data = bytes(range(256)) * 2 + b"\x01"  # 513 bytes: 255 + 255 + 3
    transport = ScriptedTransport(
        [
            ("10db3fffff" + data[:255].hex(), "9000"),
            ("10db3fffff" + data[255:510].hex(), "9000"),
            ("00db3fff03" + data[510:].hex(), "9000"),
        ]
    )
    await exchange(transport, Command(0, 0xDB, 0x3F, 0xFF, data))
    assert transport.script == []


async def test_chaining_stops_at_the_first_error() -> None:
    transport = ScriptedTransport([("10db3fffff" + "00" * 255, "6a80")])
    with pytest.raises(WrongData):
        await exchange(transport, Command(0, 0xDB, 0x3F, 0xFF, bytes(300)))


async def test_chaining_refuses_more_commands_than_the_limit() -> None:
    transport = ScriptedTransport([])
    with pytest.raises(ValueError, match="limit"):
        await exchange(transport, Command(0, 0xDB, 0, 0, bytes(255 * 3)), chain_limit=2)
    assert transport.sent == []


async def test_extended_mode_sends_one_extended_command() -> None:
    data = bytes(300)
    transport = ScriptedTransport([("00db3fff00012c" + data.hex(), "9000")])
    await exchange(transport, Command(0, 0xDB, 0x3F, 0xFF, data), extended=True)


async def test_short_mode_caps_le_at_256_and_fetches_the_rest() -> None:
    transport = ScriptedTransport(
        [("00b0000000", "aa" * 256 + "6104"), ("00c0000004", "bb" * 4 + "9000")]
    )
    response = await exchange(transport, Command(0, 0xB0, 0, 0, le=1000))
    assert len(response.data) == 260


class EndlessMoreData(CardTransport):
    """A broken card that always says more data is waiting."""

    def __init__(self) -> None:
        self.calls = 0

    async def transmit(self, apdu: bytes) -> bytes:
        self.calls += 1
        return b"\x00" * 255 + b"\x61\x00"

    async def close(self) -> None:
        pass


async def test_get_response_loop_is_bounded_by_rounds() -> None:
    transport = EndlessMoreData()
    with pytest.raises(MalformedResponse, match="rounds"):
        await exchange(transport, Command(0, 0xCA, 0, 0, le=256), chain_limit=5)
    assert transport.calls == 6


async def test_get_response_loop_is_bounded_by_total_size() -> None:
    transport = EndlessMoreData()
    with pytest.raises(MalformedResponse, match="longer"):
        await exchange(transport, Command(0, 0xCA, 0, 0, le=256), max_response=1000)
    assert transport.calls <= 5


async def test_empty_response_in_the_loop_is_malformed() -> None:
    transport = ScriptedTransport([("00ca000000", "6110"), ("00c0000010", "")])
    with pytest.raises(MalformedResponse):
        await exchange(transport, Command(0, 0xCA, 0, 0, le=256))


@given(st.lists(st.binary(max_size=300), min_size=1, max_size=8))
async def test_random_responses_raise_only_typed_errors(responses: list[bytes]) -> None:
    queue = list(responses)

    class Random(CardTransport):
        async def transmit(self, apdu: bytes) -> bytes:
            return queue.pop(0) if queue else b"\x6f\x00"

        async def close(self) -> None:
            pass

    try:
        response = await exchange(Random(), Command(0, 0xCA, 0, 0, le=256), chain_limit=4)
    except ApduError:
        return
    assert response.sw == 0x9000


# --- against the probe card in memory -------------------------------------------------------


async def test_probe_card_selects_by_aid_prefix_and_keeps_selection_on_failed_probe() -> None:
    card = ProbeCard()
    transport = CardTransportLoop(card)
    await exchange(transport, Command(0, 0xA4, 4, 0, PIV_AID[:5], 256))
    assert card.selected == PIV_AID
    with pytest.raises(FileNotFound):
        await exchange(transport, Command(0, 0xA4, 4, 0, bytes.fromhex("a0000001510000"), 256))
    assert card.selected == PIV_AID


async def test_probe_card_long_answer_comes_whole_through_61xx() -> None:
    card = ProbeCard()
    response = await exchange(CardTransportLoop(card), Command(0, 0xE0, 0, 0, le=256))
    assert response.data == bytes(i % 251 for i in range(ProbeCard.LONG_TEST_SIZE))


async def test_probe_card_rejects_unknown_instructions() -> None:
    with pytest.raises(InsNotSupported):
        await exchange(CardTransportLoop(ProbeCard()), Command(0, 0x44, 0, 0))
