"""The PAN scan: Luhn-valid runs standing alone, but not one digit repeated."""

from __future__ import annotations

from loopline.privacy import find_pans, looks_like_pan


def test_the_scan_finds_card_numbers_and_not_placeholders() -> None:
    text = "paid with 4111111111111111; span 0000000000000000; id 5555555555554444x"
    assert find_pans(text) == ["4111111111111111"]
    assert find_pans("parent 00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01") == []
    assert looks_like_pan("0000000000000000")  # an identifier like it is still refused
