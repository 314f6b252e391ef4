"""ENAS on text: perplexity is right, a tiny search runs and resumes identically."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from archsearch.data.text import batchify
from archsearch.estimators.language_model import SharedRNNEstimator
from archsearch.nn.language_model import LSTMLanguageModel, lstm_matching
from archsearch.oneshot.enas import ENAS, ENASConfig, enas_controller
from archsearch.registry import SPACES
from archsearch.train.lm import perplexity


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("tinyptb")
    rng = random.Random(0)
    for split, n in (("train", 200), ("valid", 40), ("test", 40)):
        lines = [" ".join(["the", rng.choice(["cat", "dog"]), rng.choice(["sat", "ran"]),
                           "on", "a", rng.choice(["mat", "rug"])]) for _ in range(n)]
        (folder / f"ptb.{split}.txt").write_text("\n".join(lines) + "\n")
    return str(folder)


def test_perplexity_of_a_known_model_equals_the_hand_computed_value() -> None:
    vocab = 5
    model = LSTMLanguageModel(vocab, 4, 0, 0, 0, 0)
    with torch.no_grad():  # every weight zero: the logits are the bias at every position
        for p in model.parameters():
            p.zero_()
        model.bias.copy_(torch.tensor([2.0, 1.0, 0.0, -1.0, 0.5]))
    tokens = torch.tensor([0, 1, 2, 0, 4, 3, 0, 1, 1, 2, 0])
    data = batchify(tokens, 1)  # (11, 1)
    log_p = F.log_softmax(model.bias, 0)
    targets = tokens[1:]
    expected = math.exp(-float(log_p[targets].mean()))
    assert perplexity(model, data, bptt=4) == pytest.approx(expected, rel=1e-6)


def test_lstm_baseline_matches_the_parameter_count() -> None:
    for target in (50_000, 500_000, 4_000_000):
        hidden = lstm_matching(target, 1000)
        n = sum(p.numel() for p in LSTMLanguageModel(1000, hidden).parameters())
        assert abs(n - target) / target < 0.05


def make(corpus: str) -> ENAS:
    space = SPACES.create("enas-rnn", n_nodes=4)
    estimator = SharedRNNEstimator(space, corpus, hidden=16, batch_size=4, bptt=8,
                                   device="cpu", max_steps=6)
    controller = enas_controller(space, seed=2, aggregate=2, hidden=16)
    return ENAS(estimator, controller, ENASConfig(epochs=3, controller_steps=2, aggregate=2,
                                                  derive_samples=4))


def test_tiny_text_search_runs_and_resumes_identically(corpus: str, tmp_path: Path) -> None:
    whole = make(corpus)
    history = whole.run()
    assert len(history) == 3
    for r in history:  # a cross-entropy over a vocabulary, and its perplexity beside it
        assert r["shared_loss"] > 0 and r["shared_ppl"] == pytest.approx(math.exp(r["shared_loss"]))
    first = make(corpus)
    first.run_epoch()
    first.save(tmp_path / "enas.pt")
    resumed = make(corpus)
    resumed.load(tmp_path / "enas.pt")
    resumed.run()

    def untimed(h):
        return [{k: v for k, v in r.items() if not k.endswith("seconds") and k != "shared_acc"}
                for r in h]

    assert untimed(resumed.history) == untimed(whole.history)


@pytest.mark.slow
def test_search_derive_retrain_from_the_cli(corpus: str, tmp_path: Path, capsys) -> None:
    from archsearch.cli.main import main

    run = tmp_path / "run"
    small = ["--estimator-opt", "hidden=16", "--estimator-opt", "batch_size=4",
             "--estimator-opt", "bptt=8", "--estimator-opt", "max_steps=5",
             "--final-opt", "hidden=16", "--final-opt", "batch_size=4", "--final-opt", "bptt=8",
             "--final-opt", "max_steps=5"]
    assert main(["search", "--space", "enas-rnn", "--data", corpus, "--epochs", "2",
                 "--final-epochs", "1", "--baseline-random", "1", "--run", str(run),
                 "--no-progress", "--device", "cpu", "--strategy-opt", "controller_steps=1",
                 *small]) == 0
    out = capsys.readouterr().out
    assert "test_ppl" in out and "LSTM (" in out and "random mean" in out
    assert main(["train", str(run), "--epochs", "1", "--no-progress"]) == 0
    assert "test_ppl" in capsys.readouterr().out
