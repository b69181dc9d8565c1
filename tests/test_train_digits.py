"""examples/train_digits.py: SGD on derive's gradients trains a real classifier, and
it is the same training as torch's, loss for loss: the ``[[layers]]`` network
(specs/digits_classifier.toml) and the residual one written as equations
(specs/digits_residual.toml)."""

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
NETWORKS = pytest.mark.parametrize("spec", ["classifier", "residual"])


@NETWORKS
def test_the_example_reaches_95_percent_on_held_out_digits(spec, tmp_path, capsys):
    plot = tmp_path / "digits_loss.png"
    accuracy = train_digits.main(["--spec", spec, "--plot", str(plot)])
    assert accuracy >= 0.95
    assert plot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    out = capsys.readouterr().out
    assert out.startswith(f"{train_digits.NETWORKS[spec].spec}: 1720 SGD steps")
    assert f"test {accuracy:.1%} (" in out
    assert f"wrote {plot}" in out


def test_each_network_writes_its_own_plot_by_default():
    networks = train_digits.NETWORKS
    assert networks["classifier"].plot.name == "digits_loss.png"
    assert networks["residual"].plot.name == "digits_residual_loss.png"
    assert networks["classifier"].module.__name__ == "digits_classifier"
    assert networks["residual"].module.__name__ == "digits_residual"


def test_labels_reach_each_module_as_it_takes_them():
    """The layers module takes integer labels, the equation module one-hot rows; with
    its residual block zeroed (relu(0) = 0, so h1 = h0) the residual network is the
    64-32-10 one, and both give the same loss and logits from the same labels."""
    labels = np.array([3, 0, 9, 9])
    classifier = train_digits.NETWORKS["classifier"]
    residual = train_digits.NETWORKS["residual"]
    np.testing.assert_array_equal(classifier.targets(labels), labels)
    np.testing.assert_array_equal(residual.targets(labels), np.eye(10)[labels])
    x = train_digits.load_data()[0][:4]
    layers = train_digits.initial_parameters(network=classifier)
    zeroed = {
        "W0": layers["W0"],
        "b0": layers["b0"],
        "W1": np.zeros((32, 32)),
        "b1": np.zeros(32),
        "W2": layers["W1"],
        "b2": layers["b1"] + 0.5,
    }
    layers["b1"] = zeroed["b2"]
    np.testing.assert_allclose(
        residual.scores(zeroed, x, labels), classifier.scores(layers, x, labels)
    )
    np.testing.assert_allclose(
        residual.loss(zeroed, x, labels), classifier.loss(layers, x, labels)
    )
    # The logits do not depend on the labels given alongside them.
    np.testing.assert_array_equal(
        residual.scores(zeroed, x, labels), residual.scores(zeroed, x, labels[::-1])
    )


def test_the_split_holds_out_a_stratified_quarter():
    x_train, x_test, y_train, y_test = train_digits.load_data()
    assert len(x_train) + len(x_test) == 1797
    assert len(x_test) == 450
    assert x_train.shape[1] == 64 and x_train.dtype == np.float64
    assert 0.0 <= x_train.min() and x_train.max() <= 1.0
    # Stratified: each class is held out in its share of the whole, to one image.
    everything = np.bincount(np.concatenate([y_train, y_test]))
    assert np.all(np.abs(np.bincount(y_test) - everything / 4) <= 1)


@NETWORKS
def test_training_and_its_plot_are_deterministic(spec, tmp_path):
    network = train_digits.NETWORKS[spec]
    _, first, _ = train_digits.train(epochs=2, network=network)
    _, second, _ = train_digits.train(epochs=2, network=network)
    assert first == second
    train_digits.plot(first, 0.5, tmp_path / "a.png", network.title)
    train_digits.plot(second, 0.5, tmp_path / "b.png", network.title)
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


class Residual(torch.nn.Module):
    """specs/digits_residual.toml in torch: h0 = relu(x W0^T + b0),
    h1 = h0 + relu(h0 W1^T + b1), logits = h1 W2^T + b2."""

    def __init__(self) -> None:
        super().__init__()
        self.layer0 = torch.nn.Linear(64, 32)
        self.layer1 = torch.nn.Linear(32, 32)
        self.layer2 = torch.nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h0 = torch.relu(self.layer0(x))
        h1 = h0 + torch.relu(self.layer1(h0))
        return self.layer2(h1)


def torch_network(spec: str) -> tuple[torch.nn.Module, dict[str, torch.nn.Linear]]:
    """The torch model of ``spec``, in float64, and its layer for each ``W<k>, b<k>``."""
    if spec == "classifier":
        model = torch.nn.Sequential(
            torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10)
        )
        layers = {"0": model[0], "1": model[2]}
    else:
        model = Residual()
        layers = {"0": model.layer0, "1": model.layer1, "2": model.layer2}
    return model.double(), layers


@NETWORKS
def test_torch_trains_to_the_same_loss_at_every_step(spec):
    """Same initial weights, same batches, same learning rate, float64: torch's
    CrossEntropyLoss (on integer labels) and SGD give derive's minibatch loss at each
    step to 1e-9, and the same weights after them."""
    network = train_digits.NETWORKS[spec]
    x_train, _, y_train, _ = train_digits.load_data()
    params = train_digits.initial_parameters(network=network)
    model, layers = torch_network(spec)
    assert {f"{kind}{k}" for k in layers for kind in "Wb"} == set(params)
    with torch.no_grad():
        for k, layer in layers.items():
            layer.weight.copy_(torch.from_numpy(params[f"W{k}"]))
            layer.bias.copy_(torch.from_numpy(params[f"b{k}"]))
    rate = train_digits.LEARNING_RATE
    optimizer = torch.optim.SGD(model.parameters(), lr=rate)
    criterion = torch.nn.CrossEntropyLoss()
    ours, theirs = [], []
    batches = train_digits.batches(len(x_train))
    for _, batch in zip(range(TORCH_STEPS), batches, strict=False):
        x, y = x_train[batch], y_train[batch]
        loss, params = train_digits.sgd_step(params, x, y, rate, network)
        ours.append(loss)
        optimizer.zero_grad()
        torch_loss = criterion(model(torch.from_numpy(x)), torch.from_numpy(y))
        torch_loss.backward()
        optimizer.step()
        theirs.append(torch_loss.item())
    assert len(ours) == TORCH_STEPS
    assert ours[-1] < 0.5 * ours[0]  # it did learn
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=0)
    for k, layer in layers.items():
        for name, value in ((f"W{k}", layer.weight), (f"b{k}", layer.bias)):
            np.testing.assert_allclose(
                params[name], value.detach().numpy(), rtol=1e-9, atol=1e-12
            )
