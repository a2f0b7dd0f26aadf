"""The corpus, tokenizer, shards and sampler of the LLM trainer."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from loopline.exceptions import ConfigError
from loopline.llm import data


@pytest.fixture(scope="module")
def works() -> dict[str, str]:
    return data.shakespeare()


@pytest.fixture(scope="module")
def shards(works: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> data.Manifest:
    folder = tmp_path_factory.mktemp("llm") / "shards"
    return data.prepare(folder, vocab_size=1024, works=works, shard_tokens=200_000)


def test_the_corpus_is_the_42_works_with_two_plays_held_out(works: dict[str, str]) -> None:
    assert len(works) == 42
    assert sum(len(t) for t in works.values()) == 5_057_198  # shared/DATA.md: 5.06 MB
    texts = data.split(works)
    assert texts["val"] == [works["hamlet_gut.txt"], works["tempest_gut.txt"]]
    assert len(texts["train"]) == 40
    assert "To be, or not to be" in texts["val"][0]
    assert not any("To be, or not to be, that is" in t for t in texts["train"])


def test_shards_decode_back_to_the_text_across_shard_edges(
    shards: data.Manifest, works: dict[str, str]
) -> None:
    tokenizer = data.load_tokenizer(shards.tokenizer_path)
    assert shards.vocab_size == tokenizer.get_vocab_size() == 1024
    val = data.Tokens(shards, "val")
    assert len(val) == shards.tokens("val")
    eot = tokenizer.token_to_id(data.EOT)
    ids = val.window(0, len(val)).tolist()
    cut = ids.index(eot)
    assert tokenizer.decode(ids[:cut]) == works["hamlet_gut.txt"]  # byte-level: lossless
    train = data.Tokens(shards, "train")
    assert len(train.maps) > 1  # 200,000 tokens a shard
    edge = int(train.starts[1])
    across = train.window(edge - 5, 10)
    assert across.tolist() == [*train.maps[0][-5:].tolist(), *train.maps[1][:5].tolist()]
    assert shards.bytes("val") == len(works["hamlet_gut.txt"]) + len(works["tempest_gut.txt"])


def test_a_damaged_shard_is_refused_and_an_interrupted_write_leaves_nothing(
    shards: data.Manifest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(shards.folder, copy)
    data.open_manifest(copy)  # intact
    shard = copy / "train-00001.bin"
    raw = bytearray(shard.read_bytes())
    raw[100] ^= 0xFF
    shard.write_bytes(bytes(raw))
    with pytest.raises(ConfigError, match=r"train-00001\.bin is missing or damaged"):
        data.open_manifest(copy)

    calls = 0
    sha256 = data._sha256

    def dies_on_the_fourth(path: Path) -> str:  # the tokenizer's, two shards, then this
        nonlocal calls
        calls += 1
        if calls == 4:
            raise OSError("disk full")
        return sha256(path)

    monkeypatch.setattr(data, "_sha256", dies_on_the_fourth)
    target = tmp_path / "cut"
    small = {"a_gut.txt": "to be or not " * 2000, **{n: "that is " * 500 for n in data.HELD_OUT}}
    with pytest.raises(OSError, match="disk full"):
        data.prepare(target, vocab_size=300, works=small, shard_tokens=1000)
    assert not target.exists()
    assert list(tmp_path.glob(".cut-*")) == []  # no staging folder left either


def test_the_sampler_is_deterministic_rank_aware_and_resumable() -> None:
    a = data.Sampler(10_001, 10, global_batch=8, seed=3)  # 1,000 windows
    b = data.Sampler(10_001, 10, global_batch=8, seed=3)
    steps = [a.next() for _ in range(5)]
    assert all((x == b.next()).all() for x in steps)
    assert all(s.min() >= 0 and s.max() <= 10_001 - 11 and (s % 10 == 0).all() for s in steps)
    # two ranks share each step's batch: disjoint halves of what one rank takes alone
    one, two = data.Sampler(10_001, 10, 8, seed=3), data.Sampler(10_001, 10, 8, seed=3)
    for _ in range(3):
        alone = one.next()
        state = two.state_dict()
        first = two.next(rank=0, world=2)
        two.load_state_dict(state)
        second = two.next(rank=1, world=2)
        assert np.concatenate([first, second]).tolist() == alone.tolist()
    # resumed from its state, a fresh sampler goes on with the same windows
    state = a.state_dict()
    resumed = data.Sampler(10_001, 10, 8, seed=0)
    resumed.load_state_dict(state)
    assert all((a.next() == resumed.next()).all() for _ in range(200))  # past an epoch
    assert a.epoch == resumed.epoch == 1
    with pytest.raises(ConfigError, match="cannot share"):
        a.next(rank=0, world=3)


def test_an_epoch_visits_every_window_once() -> None:
    sampler = data.Sampler(1001, 10, 10, seed=1)  # 100 windows, 10 a step
    seen = np.concatenate([sampler.next() for _ in range(10)])
    assert sorted(seen.tolist()) == list(range(0, 1000, 10))
    assert not (sampler.next() == seen[:10]).all()  # the next epoch: another order


def test_bits_per_byte_and_the_unigram_scale() -> None:
    assert data.unigram_bits_per_byte(["ab" * 50_000], ["abab"]) == pytest.approx(1.0, abs=0.01)
    assert data.bits_per_byte(math.log(2), tokens=100, n_bytes=100) == pytest.approx(1.0)
    assert data.bits_per_byte(1.0, tokens=100, n_bytes=300) == pytest.approx(1 / 3 / math.log(2))
