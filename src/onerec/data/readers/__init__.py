"""Readers: each turns one source layout into :class:`onerec.data.raw.RawTables`."""

from onerec.data.readers.kuairand import read_kuairand, read_video_features
from onerec.data.readers.movielens import read_movielens_1m
from onerec.data.readers.recbole import read_recbole
from onerec.data.readers.sequences import read_amazon, read_sequences
from onerec.data.readers.tabular import read_generic, read_table

__all__ = [
    "read_amazon",
    "read_generic",
    "read_kuairand",
    "read_movielens_1m",
    "read_recbole",
    "read_sequences",
    "read_table",
    "read_video_features",
]
