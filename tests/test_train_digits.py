"""examples/train_digits.py: SGD on derive's gradients trains a real classifier, and
it is the same training as torch's, loss for loss."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import ROOT, import_path

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

train_digits = import_path(ROOT / "examples" / "train_digits.py", "train_digits")

#: Steps compared with torch, loss by loss.
TORCH_STEPS = 200


def test_the_example_reaches_95_percent_on_held_out_digits(tmp_path, capsys):
    plot = tmp_path / "digits_loss.png"
    accuracy = train_digits.main(["--plot", str(plot)])
    assert accuracy >= 0.95
    assert plot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    out = capsys.readouterr().out
    assert f"test {accuracy:.1%} (" in out
    assert f"wrote {plot}" in out


def test_the_split_holds_out_a_stratified_quarter():
    x_train, x_test, y_train, y_test = train_digits.load_data()
    assert len(x_train) + len(x_test) == 1797
    assert len(x_test) == 450
    assert x_train.shape[1] == 64 and x_train.dtype == np.float64
    assert 0.0 <= x_train.min() and x_train.max() <= 1.0
    # Stratified: each class is held out in its share of the whole, to one image.
    everything = np.bincount(np.concatenate([y_train, y_test]))
    assert np.all(np.abs(np.bincount(y_test) - everything / 4) <= 1)


def test_training_and_its_plot_are_deterministic(tmp_path):
    _, first, _ = train_digits.train(epochs=2)
    _, second, _ = train_digits.train(epochs=2)
    assert first == second
    train_digits.plot(first, 0.5, tmp_path / "a.png")
    train_digits.plot(second, 0.5, tmp_path / "b.png")
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


def test_torch_trains_to_the_same_loss_at_every_step():
    """Same initial weights, same batches, same learning rate, float64: torch's
    CrossEntropyLoss and SGD give derive's minibatch loss at each step to 1e-9."""
    x_train, _, y_train, _ = train_digits.load_data()
    params = train_digits.initial_parameters()
    model = torch.nn.Sequential(
        torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10)
    ).double()
    with torch.no_grad():
        for name, layer in (("0", model[0]), ("1", model[2])):
            layer.weight.copy_(torch.from_numpy(params[f"W{name}"]))
            layer.bias.copy_(torch.from_numpy(params[f"b{name}"]))
    rate = train_digits.LEARNING_RATE
    optimizer = torch.optim.SGD(model.parameters(), lr=rate)
    criterion = torch.nn.CrossEntropyLoss()
    ours, theirs = [], []
    batches = train_digits.batches(len(x_train))
    for _, batch in zip(range(TORCH_STEPS), batches, strict=False):
        x, y = x_train[batch], y_train[batch]
        loss, params = train_digits.sgd_step(params, x, y, rate)
        ours.append(loss)
        optimizer.zero_grad()
        torch_loss = criterion(model(torch.from_numpy(x)), torch.from_numpy(y))
        torch_loss.backward()
        optimizer.step()
        theirs.append(torch_loss.item())
    assert len(ours) == TORCH_STEPS
    assert ours[-1] < 0.5 * ours[0]  # it did learn
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=0)
    trained = {
        "W0": model[0].weight,
        "b0": model[0].bias,
        "W1": model[2].weight,
        "b1": model[2].bias,
    }
    for name, value in trained.items():
        np.testing.assert_allclose(
            params[name], value.detach().numpy(), rtol=1e-9, atol=1e-12
        )
