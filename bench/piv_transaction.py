"""Benchmark: a PKI-CAK door transaction over the real PC/SC stack (pcscd + vpcd + pyscard).

Targets: the whole transaction under 5 ms median; a warm certificate validation
under 0.5 ms; a cold one, with the CRL at hand, under 20 ms.

A virtual PIV card from the test PKI (9E key P-256 unless ``--algorithm`` says otherwise)
sits in a vpcd reader and pyscard connects to it once, as a card lying on a reader. Each
iteration is what the reader and accessd do at a door: SELECT PIV, read the 9E certificate
(GET DATA 5FC101 and its GET RESPONSE rounds), take a challenge from the ChallengeBook,
GENERAL AUTHENTICATE with 9E, then `Authenticator.verify` -- the service's own path: the
challenge consumed, the signature checked, the certificate validated (a warm cache hit).
Measured in the same run, interleaved iteration by iteration so all see the same machine:

- baseline: one bare SELECT APDU round trip over the same stack (the price of one APDU);
- the same transaction through the in-process LoopbackTransport: what is left without
  PC/SC (card and service crypto, TLV and X.509 parsing, the validation cache).

Then, against the test PKI's CRLs and OCSP served on loopback:

- warm validation: `CertificateValidator.validate` on a cache hit, against a baseline of
  the SHA-256 and dictionary lookup a hit is built on;
- cold validation: the result cache cleared before each call, the CRLs already in the
  revocation store (the repository requests made meanwhile are counted to prove no fetch);
- cold including the CRL fetch: a fresh store and validator each time, so both CRLs come
  from the loopback repository over a new HTTP session.

    python bench/piv_transaction.py [--iterations 500] [--algorithm p256|p384|rsa2048]
        [--reader "Virtual PCD 00 01"] [--warm-calls 20000] [--cold-calls 50]

Needs pcscd with vsmartcard's vpcd (tests/services.sh starts them); without them it says
why on stderr and exits with status 77 (skipped). Figures go to stderr; the last two lines
on stdout are JSON, the baselines and then {"pki_cak_median_ms": …, "warm_validation_ms": …,
"cold_validation_ms": …, …}.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import hashlib
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, get_args

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from accessd.authn.challenges import ChallengeBook
from accessd.authn.proofs import Authenticator, PkiProof
from accessd.validation.purpose import CARD_AUTH
from accessd.validation.revocation import RevocationStore
from accessd.validation.validator import CertificateValidator
from drivers.apdu import Command
from drivers.errors import DriverError, PcscError
from drivers.piv import objects
from drivers.piv.cardedge import PivCard
from drivers.piv.challenge import sign_challenge
from drivers.transport import CardTransport
from policies.vocabulary import Mechanism
from simulators.loopback import LoopbackTransport
from simulators.piv_card import PivReaderSlot, VirtualPivCard
from simulators.pki import Algorithm, PkiServer, TestPki, free_port

if TYPE_CHECKING:
    from drivers.pcsc import PcscTransport

SKIPPED = 77  # the automake convention for "test skipped"
READERS = {"Virtual PCD 00 00": 35963, "Virtual PCD 00 01": 35964}
READER_ID = 1
SLOT = "9e"
TARGETS_MS = {"pki_cak_median_ms": 5.0, "warm_validation_ms": 0.5, "cold_validation_ms": 20.0}
SELECT_PIV = Command(0x00, 0xA4, 0x04, 0x00, objects.AID, le=256).encode()
CONNECT_WAIT = 10.0  # pcscd polls vpcd; a fresh insertion shows up well within this
PRESENCE_PROBE = 0.5  # the watch's first status query answers at once
VPCD_SETTLE = 0.6  # vpcd refuses a card for about half a second after one hangs up


class Unavailable(Exception):
    """pcscd, vpcd or pyscard is not there; the message says which."""


def ms(ns: int) -> float:
    return ns / 1e6


def summary(samples: list[float]) -> dict[str, float]:
    """Median, p90 and p99 of ``samples`` (ms), rounded to the microsecond."""
    q = statistics.quantiles(samples, n=100, method="inclusive")
    return {
        "median": round(statistics.median(samples), 3),
        "p90": round(q[89], 3),
        "p99": round(q[98], 3),
    }


async def timed(call: Callable[[], Awaitable[object]]) -> float:
    start = time.perf_counter_ns()
    await call()
    return ms(time.perf_counter_ns() - start)


# -- the card in the reader -------------------------------------------------------------


async def insert_and_connect(slot: PivReaderSlot, reader: str) -> PcscTransport:
    """Put the card in vpcd's slot and connect to it through pcscd, retrying for a while."""
    try:
        from drivers.pcsc import PcscTransport, list_readers
    except ImportError as exc:
        raise Unavailable(f"pyscard is not installed (pip install .[pcsc]): {exc}") from exc
    try:
        names = await list_readers()
    except DriverError as exc:
        raise Unavailable(f"pcscd is not reachable: {exc}") from exc
    if reader not in names:
        raise Unavailable(f"pcscd lists no {reader!r} reader (is vpcd loaded?): {names}")
    if await card_present(reader):
        # Shared PC/SC access: our APDUs would land in the middle of someone else's.
        raise Unavailable(f"a card is already in {reader!r}; is a test using it? (--reader)")
    deadline = time.monotonic() + CONNECT_WAIT
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if not slot.inserted:
                await slot.insert()
            return await PcscTransport.connect(reader)
        except (OSError, PcscError) as exc:
            # vpcd hangs up on a card for ~0.5 s after the previous one left; pcscd needs
            # a poll round to notice an insertion.
            last = exc
            await asyncio.sleep(0.1 if slot.inserted else VPCD_SETTLE / 3)
    raise Unavailable(f"no card came up in {reader!r} (vpcd on port {slot.port}): {last}")


async def card_present(reader: str) -> bool:
    """Whether pcscd sees a card in ``reader`` now (the watch reports present cards first)."""
    from drivers.pcsc import CardInserted, ReaderWatch

    async with ReaderWatch() as watch:
        try:
            async with asyncio.timeout(PRESENCE_PROBE):
                async for event in watch:
                    if isinstance(event, CardInserted) and event.reader == reader:
                        return True
        except TimeoutError:
            pass
    return False


# -- one door transaction ---------------------------------------------------------------


async def transaction(card: PivCard, book: ChallengeBook, authenticator: Authenticator) -> None:
    """SELECT, read 9E's certificate, challenge, GENERAL AUTHENTICATE, verify + validate."""
    await card.select()
    cert_der = await card.read_certificate_der(SLOT)
    challenge = book.issue(READER_ID)
    # The reader needs the key's algorithm for GENERAL AUTHENTICATE, so it parses the cert.
    cert = x509.load_der_x509_certificate(cert_der)
    signature = await sign_challenge(card, SLOT, cert, challenge.value)
    proof = PkiProof(Mechanism.PKI_CAK, challenge.value, cert_der, signature)
    authenticated = await authenticator.verify(READER_ID, proof)
    if authenticated.mechanisms != {Mechanism.PKI_CAK}:
        raise AssertionError(f"the transaction established {authenticated.mechanisms}")


async def bare_select(transport: CardTransport) -> None:
    answer = await transport.transmit(SELECT_PIV)
    if answer[-2:] != b"\x90\x00":
        raise AssertionError(f"SELECT PIV answered {answer[-2:].hex()}")


async def no_reader_keys(reader_id: int) -> None:
    return None


# -- the measurements -------------------------------------------------------------------


async def card_phase(
    args: argparse.Namespace,
    pcsc: CardTransport,
    slot: PivReaderSlot,
    loop_card: PivCard,
    book: ChallengeBook,
    authenticator: Authenticator,
    validator: CertificateValidator,
) -> dict[str, Any]:
    card = PivCard(pcsc)
    apdus = slot.apdus
    await card.select()
    if slot.apdus == apdus:
        raise Unavailable(f"another card answers in {args.reader!r}; is a test using it?")
    for _ in range(args.warmup):
        await transaction(card, book, authenticator)
        await bare_select(pcsc)
        await transaction(loop_card, book, authenticator)

    apdus = slot.apdus
    await transaction(card, book, authenticator)
    per_transaction = slot.apdus - apdus

    builds, apdus = validator.chain_builds, slot.apdus
    pcsc_ms: list[float] = []
    select_ms: list[float] = []
    loop_ms: list[float] = []
    gc.collect()
    for _ in range(args.iterations):
        pcsc_ms.append(await timed(lambda: transaction(card, book, authenticator)))
        select_ms.append(await timed(lambda: bare_select(pcsc)))
        loop_ms.append(await timed(lambda: transaction(loop_card, book, authenticator)))
    return {
        "pcsc": summary(pcsc_ms),
        "select": summary(select_ms),
        "loopback": summary(loop_ms),
        "apdus_per_transaction": per_transaction,
        # More APDUs at the card than we sent: another client shared the reader meanwhile.
        "foreign_apdus": slot.apdus - apdus - args.iterations * (per_transaction + 1),
        "chain_builds": validator.chain_builds - builds,
        "accepted": authenticator.accepted,
        "rejected": dict(authenticator.rejected),
    }


async def warm_validation(
    validator: CertificateValidator, cert_der: bytes, calls: int
) -> tuple[float, float]:
    """Median µs of a cache hit, and of the SHA-256 plus dictionary lookup it is built on."""
    await validator.validate(cert_der, CARD_AUTH)
    clock = time.perf_counter_ns
    hits, bare = [], []
    table = {hashlib.sha256(cert_der).digest(): object()}
    gc.collect()
    for _ in range(calls):
        start = clock()
        await validator.validate(cert_der, CARD_AUTH)
        hits.append(clock() - start)
        start = clock()
        table.get(hashlib.sha256(cert_der).digest())
        bare.append(clock() - start)
    return statistics.median(hits) / 1e3, statistics.median(bare) / 1e3


async def cold_validation(
    validator: CertificateValidator, server: PkiServer, cert_der: bytes, calls: int
) -> tuple[list[float], int]:
    """Times of validations with the result cache cleared, CRLs in the store; and how many
    repository requests were made meanwhile (0 when the store served them)."""
    requests = sum(server.requests.values())
    times = []
    for _ in range(calls):
        validator.clear()
        times.append(await timed(lambda: validator.validate(cert_der, CARD_AUTH)))
    return times, sum(server.requests.values()) - requests


async def cold_with_fetch(
    pki: TestPki, server: PkiServer, cert_der: bytes, calls: int
) -> tuple[list[float], float]:
    """Times of validations by a fresh store and validator each; requests made per call."""
    requests = sum(server.requests.values())
    times = []
    for _ in range(calls):
        store = RevocationStore()
        validator = CertificateValidator([pki.root.cert], store, intermediates=[pki.ca.cert])
        async with store:
            times.append(await timed(functools.partial(validator.validate, cert_der, CARD_AUTH)))
    return times, (sum(server.requests.values()) - requests) / calls


async def run(args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    pki = TestPki.create(f"http://127.0.0.1:{port}")
    material = pki.issue_card(algorithms={SLOT: args.algorithm, "9a": "rsa2048"})
    cert_der = material.certificates[SLOT].public_bytes(serialization.Encoding.DER)
    slot = PivReaderSlot(READERS[args.reader], VirtualPivCard(material))
    loop_card = PivCard(LoopbackTransport(VirtualPivCard(material)))
    book = ChallengeBook()
    store = RevocationStore()
    validator = CertificateValidator([pki.root.cert], store, intermediates=[pki.ca.cert])
    authenticator = Authenticator(book, validator, no_reader_keys)
    async with PkiServer(pki, port) as server, store:
        pcsc = await insert_and_connect(slot, args.reader)
        try:
            await validator.validate(cert_der, CARD_AUTH)  # fetches the CRLs into the store
            fetched = dict(server.requests)
            card = await card_phase(args, pcsc, slot, loop_card, book, authenticator, validator)
        finally:
            await pcsc.close()
            await slot.remove()
        warm_us, warm_bare_us = await warm_validation(validator, cert_der, args.warm_calls)
        cold, cold_requests = await cold_validation(validator, server, cert_der, args.cold_calls)
        fetch, fetch_requests = await cold_with_fetch(pki, server, cert_der, args.fetch_calls)
    await asyncio.sleep(VPCD_SETTLE)  # so whoever uses the reader next is not refused
    return {
        "card": card,
        "cert_bytes": len(cert_der),
        "fetched": fetched,
        "warm_us": warm_us,
        "warm_bare_us": warm_bare_us,
        "cold": summary(cold),
        "cold_requests": cold_requests,
        "fetch": round(statistics.median(fetch), 3),
        "fetch_requests": fetch_requests,
    }


def report(args: argparse.Namespace, r: dict[str, Any]) -> None:
    card = r["card"]
    pcsc, select, loop = card["pcsc"], card["select"], card["loopback"]

    def line(label: str, s: dict[str, float]) -> str:
        return f"{label:<46} median {s['median']:7.3f}  p90 {s['p90']:7.3f}  p99 {s['p99']:7.3f} ms"

    err = sys.stderr
    print(
        f"PKI-CAK, 9E {args.algorithm}, {r['cert_bytes']}-byte certificate, "
        f"{card['apdus_per_transaction']} APDUs a transaction, {args.iterations} iterations, "
        f"reader {args.reader!r}",
        file=err,
    )
    print(line("transaction over pcscd+vpcd+pyscard", pcsc), file=err)
    print(line("baseline: bare SELECT round trip, same stack", select), file=err)
    print(line("same transaction, in-process loopback", loop), file=err)
    pcsc_share = pcsc["median"] - loop["median"]
    print(
        f"  PC/SC share {pcsc_share:.3f} ms (≈ {pcsc_share / select['median']:.1f} bare "
        f"round trips); chain builds during the timed loops: {card['chain_builds']}; "
        f"proofs accepted {card['accepted']}, rejected {card['rejected'] or 0}",
        file=err,
    )
    if card["foreign_apdus"]:
        print(
            f"  WARNING: the card saw {card['foreign_apdus']} APDUs it was not sent by this "
            "run; another PC/SC client shared the reader, so the figures are disturbed",
            file=err,
        )
    print(
        f"warm validation (cache hit, {args.warm_calls} calls): median {r['warm_us']:.2f} µs "
        f"= {r['warm_us'] / 1e3:.4f} ms; baseline SHA-256 + dict lookup {r['warm_bare_us']:.2f} µs",
        file=err,
    )
    cold = r["cold"]
    print(
        f"cold validation ({args.cold_calls} calls, result cache cleared before each, CRLs "
        f"already in the store): median {cold['median']:.3f} ms, p90 {cold['p90']:.3f} ms; "
        f"repository requests meanwhile: {r['cold_requests']}",
        file=err,
    )
    print(
        f"cold validation including the CRL fetch (fresh store and validator each, "
        f"{args.fetch_calls} calls, {r['fetch_requests']:g} requests each): "
        f"median {r['fetch']:.3f} ms; first fetch made {r['fetched']}",
        file=err,
    )
    print(
        json.dumps(
            {
                "baseline": "bare SELECT APDU round trip over pcscd+vpcd+pyscard",
                "baseline_select_median_ms": select["median"],
                "baseline_select_p99_ms": select["p99"],
                "loopback_median_ms": loop["median"],
                "pcsc_share_ms": round(pcsc_share, 3),
                "warm_baseline_us": round(r["warm_bare_us"], 3),
            }
        )
    )
    figures = {
        "pki_cak_median_ms": pcsc["median"],
        "warm_validation_ms": round(r["warm_us"] / 1e3, 5),
        "cold_validation_ms": cold["median"],
    }
    print(
        json.dumps(
            figures
            | {
                "pki_cak_p90_ms": pcsc["p90"],
                "pki_cak_p99_ms": pcsc["p99"],
                "warm_validation_us": round(r["warm_us"], 3),
                "cold_validation_note": "result cache cleared, CRLs already in the store",
                "cold_with_crl_fetch_ms": r["fetch"],
                "baseline_select_median_ms": select["median"],
                "baseline_select_p90_ms": select["p90"],
                "baseline_select_p99_ms": select["p99"],
                "loopback_median_ms": loop["median"],
                "loopback_p90_ms": loop["p90"],
                "loopback_p99_ms": loop["p99"],
                "warm_baseline_us": round(r["warm_bare_us"], 3),
                "apdus_per_transaction": card["apdus_per_transaction"],
                "foreign_apdus": card["foreign_apdus"],
                "cold_calls": args.cold_calls,
                "warm_calls": args.warm_calls,
                "algorithm": args.algorithm,
                "iterations": args.iterations,
                "meets_targets": all(figures[k] < v for k, v in TARGETS_MS.items()),
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=500, help="timed transactions")
    ap.add_argument("--warmup", type=int, default=20, help="untimed transactions first")
    ap.add_argument("--algorithm", choices=get_args(Algorithm), default="p256", help="the 9E key")
    ap.add_argument("--reader", choices=sorted(READERS), default="Virtual PCD 00 01")
    ap.add_argument("--warm-calls", type=int, default=20_000, help="warm validations timed")
    ap.add_argument("--cold-calls", type=int, default=50, help="cold validations timed")
    ap.add_argument(
        "--fetch-calls", type=int, default=5, help="cold validations with a fresh store"
    )
    args = ap.parse_args()
    if min(args.iterations, args.warm_calls, args.cold_calls, args.fetch_calls) < 2:
        ap.error("every count must be at least 2")
    try:
        result = asyncio.run(run(args))
    except Unavailable as exc:
        print(f"piv_transaction: skipped: {exc}", file=sys.stderr)
        raise SystemExit(SKIPPED) from None
    except DriverError as exc:
        # pyscard connects in shared mode, so another client's SELECT can land between our
        # GET DATA and its GET RESPONSE rounds; the card then answers out of sequence.
        raise SystemExit(
            f"piv_transaction: the card exchange failed ({type(exc).__name__}: {exc}); if "
            f"another PC/SC client used {args.reader!r} meanwhile, rerun or pick --reader"
        ) from exc
    report(args, result)


if __name__ == "__main__":
    main()
