"""Named data sets: where their files live and which reader reads them.

``kuairand-demo`` is embedded in the package (``onerec/data/embedded/kuairand``, CC BY-SA 4.0)
and needs no path. The others are read from a data root: the ``data_root`` argument
(``--data-root``), else the ``ONEREC_DATA_ROOT`` environment variable, else ``../shared/data``
relative to the current directory. Amazon and MovieLens data may not be redistributed, so they
are never copied into the package.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from onerec.data.raw import RawTables
from onerec.data.readers.kuairand import KUAIRAND_LICENSE, read_kuairand
from onerec.data.readers.movielens import read_movielens_1m
from onerec.data.readers.recbole import read_recbole
from onerec.data.readers.sequences import read_amazon
from onerec.errors import DataValidationError

DATA_ROOT_ENV = "ONEREC_DATA_ROOT"
DEFAULT_DATA_ROOT = Path("..") / "shared" / "data"
KUAIRAND_LOG = "log_random_4_22_to_5_08_1k.csv.gz"
KUAIRAND_VIDEOS = "video_features_basic_pure.csv.gz"


@dataclass(frozen=True)
class NamedDataset:
    """A data set known by name: files relative to the data root and the reader to use."""

    name: str
    description: str
    files: tuple[str, ...]  # relative to the data root (empty for embedded data)
    reader: Callable[[Path], RawTables]
    embedded: bool = False


def resolve_data_root(data_root: str | Path | None = None) -> Path:
    """``data_root`` if given, else ``$ONEREC_DATA_ROOT``, else ``../shared/data`` from the cwd."""
    if data_root is not None:
        return Path(data_root).resolve()
    env = os.environ.get(DATA_ROOT_ENV)
    return Path(env).resolve() if env else (Path.cwd() / DEFAULT_DATA_ROOT).resolve()


def embedded_kuairand_dir() -> Path:
    """Directory of the embedded KuaiRand files inside the installed package."""
    root = resources.files("onerec.data") / "embedded" / "kuairand"
    return Path(str(root))


def _kuairand(root: Path, name: str) -> RawTables:
    raw = read_kuairand(
        root / "random_1k" / KUAIRAND_LOG, root / "pure_features" / KUAIRAND_VIDEOS, name=name
    )
    raw.source["description"] = (
        "KuaiRand-1K random-exposure log (unbiased feedback) + KuaiRand-Pure video features"
    )
    return raw


def _kuairand_demo(_: Path) -> RawTables:
    folder = embedded_kuairand_dir()
    raw = read_kuairand(folder / KUAIRAND_LOG, folder / KUAIRAND_VIDEOS, name="kuairand-demo")
    raw.source["description"] = (
        "KuaiRand-1K random-exposure log + KuaiRand-Pure video features, embedded in onerec "
        f"(licence {KUAIRAND_LICENSE}; see onerec/data/embedded/kuairand/ATTRIBUTION.md)"
    )
    raw.source["files"] = [
        f"onerec/data/embedded/kuairand/{KUAIRAND_LOG}",
        f"onerec/data/embedded/kuairand/{KUAIRAND_VIDEOS}",
    ]
    return raw


NAMED_DATASETS: dict[str, NamedDataset] = {
    d.name: d
    for d in (
        NamedDataset(
            "kuairand-demo",
            "KuaiRand-1K random-exposure log + video features, shipped inside onerec (CC BY-SA 4.0)",
            (),
            _kuairand_demo,
            embedded=True,
        ),
        NamedDataset(
            "kuairand-1k",
            "KuaiRand-1K random-exposure log + KuaiRand-Pure video features, from the data root",
            (f"kuairand/random_1k/{KUAIRAND_LOG}", f"kuairand/pure_features/{KUAIRAND_VIDEOS}"),
            lambda root: _kuairand(root / "kuairand", "kuairand-1k"),
        ),
        NamedDataset(
            "amazon-beauty",
            "Amazon 2014 Beauty 5-core sequences (P5/S3-Rec ids) + item text and attributes",
            (
                "amazon2014/beauty/sequences.txt",
                "amazon2014/beauty/items.tsv.gz",
                "amazon2014/beauty/users.tsv.gz",
            ),
            lambda root: read_amazon(root / "amazon2014" / "beauty", "amazon-beauty"),
        ),
        NamedDataset(
            "amazon-sports",
            "Amazon 2014 Sports_and_Outdoors 5-core sequences + item text and attributes",
            (
                "amazon2014/sports/sequences.txt",
                "amazon2014/sports/items.tsv.gz",
                "amazon2014/sports/users.tsv.gz",
            ),
            lambda root: read_amazon(root / "amazon2014" / "sports", "amazon-sports"),
        ),
        NamedDataset(
            "ml-100k",
            "MovieLens-100K (RecBole atomic files): ratings with timestamps, movie and user side tables",
            ("movielens/ml-100k/ml-100k.inter",),
            lambda root: read_recbole(
                root / "movielens" / "ml-100k" / "ml-100k.inter", name="ml-100k"
            ),
        ),
        NamedDataset(
            "ml-1m",
            "MovieLens-1M, latest 20% of ratings by time, with movies and users",
            (
                "movielens/ml-1m/ratings_last20pct_by_time.csv.gz",
                "movielens/ml-1m/movies.dat",
                "movielens/ml-1m/users.dat",
            ),
            lambda root: read_movielens_1m(root / "movielens" / "ml-1m", "ml-1m"),
        ),
    )
}


def read_named(name: str, data_root: str | Path | None = None) -> RawTables:
    """Read a named data set (see :data:`NAMED_DATASETS`) into :class:`RawTables`."""
    if name not in NAMED_DATASETS:
        from onerec.data.columns import suggest

        close = suggest(name, list(NAMED_DATASETS))
        raise DataValidationError(
            f"unknown data set {name!r} (known: {', '.join(NAMED_DATASETS)})",
            field="dataset",
            hint=close or "or pass --interactions PATH for your own files",
        )
    spec = NAMED_DATASETS[name]
    root = resolve_data_root(data_root)
    for relative in spec.files:
        if not (root / relative).is_file():
            raise DataValidationError(
                f"data set {name!r} needs this file under the data root {root}",
                path=str(root / relative),
                hint=f"pass --data-root DIR or set {DATA_ROOT_ENV} to the folder that holds {relative.split('/')[0]}/",
            )
    return spec.reader(root)
