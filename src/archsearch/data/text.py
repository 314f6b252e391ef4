"""Word-level corpora in the Penn Treebank format: ``<folder>/ptb.{train,valid,test}.txt``,
whitespace-separated words, one sentence per line, ``<eos>`` appended at each line end.

The vocabulary is the training split's words in order of first appearance (so ids are stable
for a given file); a word of the validation or test split that training never saw becomes
``<unk>`` when the vocabulary has it, and is an error otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from archsearch.errors import UserError

SPLITS = ("train", "valid", "test")
EOS = "<eos>"


@dataclass(frozen=True)
class Corpus:
    name: str
    vocab: tuple[str, ...]  # id -> word
    train: torch.Tensor  # (N,) int64 token ids
    valid: torch.Tensor
    test: torch.Tensor

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)


def _words(path: Path) -> list[str]:
    words: list[str] = []
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if "\x00" in line:
                    raise UnicodeDecodeError("utf-8", b"", 0, 1, "a NUL byte")
                words += line.split() + [EOS]
    except UnicodeDecodeError:
        raise UserError(f"{path} is not a text file (UTF-8 words, one sentence per line)") from None
    if not any(w != EOS for w in words):
        raise UserError(f"{path} holds no words")
    return words


def load_corpus(folder: str | Path, prefix: str = "ptb") -> Corpus:
    folder = Path(folder)
    paths = {s: folder / f"{prefix}.{s}.txt" for s in SPLITS}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise UserError(f"{folder} is not a {prefix.upper()}-format corpus folder: missing "
                        f"{', '.join(missing)}")
    train = _words(paths["train"])
    index: dict[str, int] = {}
    for w in train:
        index.setdefault(w, len(index))
    unk = index.get("<unk>")

    def ids(words: list[str], split: str) -> torch.Tensor:
        out = []
        for w in words:
            i = index.get(w, unk)
            if i is None:
                raise UserError(f"{paths[split]}: word {w!r} is not in the training vocabulary "
                                "(and there is no <unk>)")
            out.append(i)
        return torch.tensor(out, dtype=torch.long)

    return Corpus(folder.name, tuple(index), ids(train, "train"),
                  ids(_words(paths["valid"]), "valid"), ids(_words(paths["test"]), "test"))


def batchify(tokens: torch.Tensor, batch_size: int) -> torch.Tensor:
    """(N,) -> (T, batch_size): batch_size parallel streams, the remainder dropped."""
    t = tokens.shape[0] // batch_size
    return tokens[: t * batch_size].view(batch_size, t).t().contiguous()
