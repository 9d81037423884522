"""The pieces the demo's simulator process is made of: a test PKI kept on disk, and a site
layout for the panel fleet."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography import x509

from simulators.panel.fleet import FleetConfig, build_panel
from simulators.panel.layout import parse_layout, read_layout
from simulators.pki import TestPki
from simulators.pki.store import load_pki, save_pki


def test_a_saved_pki_serves_the_same_ca_and_its_revocations(tmp_path: Path) -> None:
    pki = TestPki.create("http://127.0.0.1:18099")
    good = pki.issue_card(name="Good")
    bad = pki.issue_card(name="Bad", variant="revoked")
    save_pki(pki, tmp_path / "pki.json")
    assert (tmp_path / "pki.json").stat().st_mode & 0o777 == 0o600
    again = load_pki(tmp_path / "pki.json")
    assert again.base_url == pki.base_url
    assert again.root.cert == pki.root.cert and again.ca.cert == pki.ca.cert
    crl = x509.load_der_x509_crl(again.crl_der("ca"))
    assert crl.is_signature_valid(pki.ca.cert.public_key())  # type: ignore[arg-type]
    revoked = {r.serial_number for r in crl}
    assert bad.certificates["9e"].serial_number in revoked
    assert good.certificates["9e"].serial_number not in revoked
    # A card issued before the save can still be revoked after the load.
    again.revoke(good.certificates["9e"])
    assert good.certificates["9e"].serial_number in {
        r.serial_number for r in x509.load_der_x509_crl(again.crl_der("ca"))
    }


def test_a_file_that_is_not_a_saved_pki_is_refused(tmp_path: Path) -> None:
    (tmp_path / "pki.json").write_text('{"v": 1}')
    with pytest.raises(ValueError, match="not a saved test PKI"):
        load_pki(tmp_path / "pki.json")


LAYOUT = {
    "v": 1,
    "panels": [
        {
            "name": "hq-panel-1",
            "doors": [
                {"door": 7, "readers": [11, 12]},
                {"door": 9, "readers": [13], "mode": "card_and_pin"},
            ],
        }
    ],
}


def test_a_layout_gives_the_panels_their_real_names_doors_and_readers(tmp_path: Path) -> None:
    path = tmp_path / "layout.json"
    path.write_text(json.dumps(LAYOUT))
    config = FleetConfig(
        host="127.0.0.1",
        port=1,
        site="HQ",
        count=5,
        state_dir=tmp_path,
        passwords={},
        layout=read_layout(path),
    )
    panel = build_panel(config, 1)
    assert panel.name == "hq-panel-1"
    assert panel.readers == [11, 12, 13]
    assert panel.door_of(13) == 9
    assert panel.session.doors[9].needs_pin and not panel.session.doors[7].needs_pin
    panel.session.buffer.close()


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"panels": []}, "a layout is"),
        ({"v": 1, "panels": []}, "no panels"),
        ({"v": 1, "panels": [{"name": "a/b", "doors": [{"door": 1, "readers": [1]}]}]}, "panel"),
        ({"v": 1, "panels": [{"name": "p", "doors": []}]}, "no doors"),
        ({"v": 1, "panels": [{"name": "p", "doors": [{"door": 0, "readers": [1]}]}]}, "positive"),
        (
            {
                "v": 1,
                "panels": [{"name": "p", "doors": [{"door": 1, "readers": [1], "mode": "x"}]}],
            },
            "mode",
        ),
    ],
)
def test_a_bad_layout_says_what_is_wrong(doc: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_layout(doc)
