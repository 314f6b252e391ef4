from __future__ import annotations

from pathlib import Path

import pytest
import torch

from archsearch.data.text import batchify, load_corpus
from archsearch.errors import UserError
from tests.conftest import shared_file


def write(folder: Path, train: str, valid: str, test: str) -> Path:
    folder.mkdir(exist_ok=True)
    for split, text in (("train", train), ("valid", valid), ("test", test)):
        (folder / f"ptb.{split}.txt").write_text(text)
    return folder


def test_vocabulary_ids_and_eos(tmp_path: Path) -> None:
    corpus = load_corpus(write(tmp_path / "c", " a b <unk>\n b c\n", " c a\n", " zzz b\n"))
    assert corpus.vocab == ("a", "b", "<unk>", "<eos>", "c")
    assert corpus.train.tolist() == [0, 1, 2, 3, 1, 4, 3]
    assert corpus.valid.tolist() == [4, 0, 3]
    assert corpus.test.tolist() == [2, 1, 3]  # unseen word -> <unk>


def test_unseen_word_without_unk_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="'zzz' is not in the training vocabulary"):
        load_corpus(write(tmp_path / "c", "a b\n", "a\n", "zzz\n"))
    with pytest.raises(UserError, match="missing"):
        load_corpus(tmp_path / "nowhere")


def test_batchify_makes_parallel_streams() -> None:
    data = batchify(torch.arange(10), 3)
    assert data.shape == (3, 3) and data[:, 0].tolist() == [0, 1, 2]


@pytest.mark.slow
@pytest.mark.data
def test_penn_treebank_counts() -> None:
    corpus = load_corpus(shared_file("ptb"))
    assert corpus.vocab_size == 10000
    assert (len(corpus.train), len(corpus.valid), len(corpus.test)) == (929589, 73760, 82430)
