"""Train a classifier of handwritten digits with the gradients derive wrote.

    python examples/train_digits.py                  # writes examples/results/digits_loss.png
    python examples/train_digits.py --spec residual  # ... digits_residual_loss.png

The data are scikit-learn's bundled digits (1,797 images of 8x8 pixels, shipped inside
the package: nothing is downloaded); a stratified quarter is held out for testing. The
network is ``specs/digits_classifier.toml`` (64-32-10, written as ``[[layers]]``) or,
with ``--spec residual``, ``specs/digits_residual.toml`` (a residual block added,
written as equations); its gradients are the committed ``generated/<spec>.py``: plain
NumPy, imported without derive, SymPy or any autodiff library. Training is minibatch
SGD written out below in a few lines of NumPy, the same for both. (From a notebook,
``derive.build("specs/digits_classifier.toml")`` gives the same module without the
file.)

Every random choice (the split, the initial weights, the batch order) comes from fixed
seeds, so a run gives the same numbers and the same plot every time.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import ModuleType

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "examples" / "results"
SEED = 0
BATCH_SIZE = 32
LEARNING_RATE = 0.1
EPOCHS = 40
#: Steps between two evaluations of the loss on the whole training and test sets.
EVALUATE_EVERY = 20

Params = dict[str, np.ndarray]


@dataclass(frozen=True)
class Network:
    """A generated module to train, and how to call it.

    The two kinds of module differ in how they take the labels: a ``[[layers]]``
    module's softmax cross-entropy takes integer class labels and its ``forward`` takes
    ``x`` alone; an equation module takes every input of its ``INPUT_SHAPES`` (here
    ``y`` as one-hot rows, ``("batch", classes)``) in ``forward`` too. Both are read
    off the module, not its name.
    """

    #: ``specs/<spec>.toml``, ``generated/<spec>.py``.
    spec: str
    #: The forward value that holds the class scores.
    logits: str
    #: Where the plot goes by default, and its title.
    plot: Path
    title: str

    @cached_property
    def module(self) -> ModuleType:
        """``generated/<spec>.py``, imported on first use."""
        if str(ROOT / "generated") not in sys.path:
            sys.path.insert(0, str(ROOT / "generated"))
        return importlib.import_module(self.spec)

    @property
    def _one_hot_classes(self) -> int | None:
        """The number of classes if ``y`` is one-hot rows, else None."""
        shapes = getattr(self.module, "INPUT_SHAPES", {})
        shape = shapes.get("y", ())
        return int(shape[1]) if len(shape) == 2 else None

    def targets(self, labels: np.ndarray) -> np.ndarray:
        """``labels`` (integer classes) as the module's ``y`` wants them."""
        classes = self._one_hot_classes
        return labels if classes is None else np.eye(classes)[labels]

    def loss(
        self, params: Mapping[str, np.ndarray], x: np.ndarray, labels: np.ndarray
    ) -> float:
        """The mean softmax cross-entropy of ``x`` against its integer ``labels``."""
        return float(self.module.loss(params, x, self.targets(labels)))

    def gradients(
        self, params: Mapping[str, np.ndarray], x: np.ndarray, labels: np.ndarray
    ) -> Params:
        """The loss's gradient with respect to every parameter."""
        return dict(self.module.gradients(params, x, self.targets(labels)))

    def scores(
        self, params: Mapping[str, np.ndarray], x: np.ndarray, labels: np.ndarray
    ) -> np.ndarray:
        """The logits of ``x``, ``(batch, classes)``; ``labels`` go in only where the
        module's ``forward`` takes every input (they do not change the logits)."""
        if hasattr(self.module, "INPUT_SHAPES"):
            values = self.module.forward(params, x, self.targets(labels))
        else:
            values = self.module.forward(params, x)
        return np.asarray(values[self.logits])


#: The networks ``--spec`` chooses from.
NETWORKS = {
    "classifier": Network(
        "digits_classifier",
        logits="y_predicted",
        plot=RESULTS / "digits_loss.png",
        title="64-32-10 ReLU network",
    ),
    "residual": Network(
        "digits_residual",
        logits="logits",
        plot=RESULTS / "digits_residual_loss.png",
        title="Residual 64-32-32-10 network",
    ),
}
CLASSIFIER = NETWORKS["classifier"]


def load_data(
    seed: int = SEED,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``x_train, x_test, y_train, y_test``: pixels scaled to [0, 1] (float64), integer
    class labels, a stratified quarter held out."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = digits.data / 16.0  # pixel intensities are 0 to 16
    x_train, x_test, y_train, y_test = train_test_split(
        x, digits.target, test_size=0.25, random_state=seed, stratify=digits.target
    )
    return x_train, x_test, y_train, y_test


def initial_parameters(seed: int = SEED, network: Network = CLASSIFIER) -> Params:
    """He-normal weight matrices (suited to ReLU), zero bias vectors, in the generated
    shapes and order."""
    rng = np.random.default_rng(seed)
    params = {}
    for name, shape in network.module.PARAMETER_SHAPES.items():
        if len(shape) == 2:  # (fan_out, fan_in), multiplied as x @ W.T
            fan_in = shape[1]
            params[name] = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
        else:
            params[name] = np.zeros(shape)
    return params


def batches(
    count: int, epochs: int = EPOCHS, size: int = BATCH_SIZE, seed: int = SEED
) -> Iterator[np.ndarray]:
    """Indices of each minibatch: every epoch a fresh shuffle, cut into ``size``
    samples (the last batch of an epoch may be smaller)."""
    rng = np.random.default_rng(seed + 1)
    for _ in range(epochs):
        order = rng.permutation(count)
        for start in range(0, count, size):
            yield order[start : start + size]


def sgd_step(
    params: Mapping[str, np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
    rate: float,
    network: Network = CLASSIFIER,
) -> tuple[float, Params]:
    """The minibatch's loss at ``params``, and ``params`` after one SGD step; ``y``
    holds integer class labels."""
    loss = network.loss(params, x, y)
    gradients = network.gradients(params, x, y)
    return loss, {
        name: value - rate * gradients[name] for name, value in params.items()
    }


def accuracy(
    params: Mapping[str, np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
    network: Network = CLASSIFIER,
) -> float:
    """The fraction of samples whose largest logit is their class."""
    logits = network.scores(params, x, y)
    return float(np.mean(np.argmax(logits, axis=1) == y))


@dataclass
class History:
    """Losses during training: each minibatch's, and the whole sets' now and then."""

    batch_loss: list[float] = field(default_factory=list)
    evaluated_at: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)


def train(
    epochs: int = EPOCHS, seed: int = SEED, network: Network = CLASSIFIER
) -> tuple[Params, History, tuple[np.ndarray, ...]]:
    """Train from ``seed``'s initial weights; return the parameters, the history and
    the data ``(x_train, x_test, y_train, y_test)``."""
    x_train, x_test, y_train, y_test = load_data(seed)
    params = initial_parameters(seed, network)
    history = History()

    def evaluate(step: int) -> None:
        history.evaluated_at.append(step)
        history.train_loss.append(network.loss(params, x_train, y_train))
        history.test_loss.append(network.loss(params, x_test, y_test))

    for step, batch in enumerate(batches(len(x_train), epochs, seed=seed)):
        if step % EVALUATE_EVERY == 0:
            evaluate(step)
        loss, params = sgd_step(
            params, x_train[batch], y_train[batch], LEARNING_RATE, network
        )
        history.batch_loss.append(loss)
    evaluate(len(history.batch_loss))
    return params, history, (x_train, x_test, y_train, y_test)


def plot(
    history: History,
    accuracy_test: float,
    path: Path,
    title: str = CLASSIFIER.title,
) -> None:
    """Training and test loss against steps, as a PNG with no version or date in it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.2), dpi=100)
    axes.plot(
        range(len(history.batch_loss)),
        history.batch_loss,
        color="tab:blue",
        alpha=0.25,
        linewidth=0.8,
        label="training minibatch",
    )
    axes.plot(
        history.evaluated_at, history.train_loss, color="tab:blue", label="training set"
    )
    axes.plot(
        history.evaluated_at,
        history.test_loss,
        color="tab:orange",
        label=f"test set (final accuracy {accuracy_test:.1%})",
    )
    axes.set_yscale("log")
    axes.set_ylim(bottom=0.01)  # a few minibatches dip lower; the sets' losses don't
    axes.set_xlabel(f"SGD step (batch {BATCH_SIZE}, learning rate {LEARNING_RATE})")
    axes.set_ylabel("mean softmax cross-entropy")
    axes.set_title(f"{title} on scikit-learn's digits, derive's gradients")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, metadata={"Software": None})
    plt.close(figure)


def main(argv: list[str] | None = None) -> float:
    """Train, report, plot; return the test accuracy."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--spec",
        choices=NETWORKS,
        default="classifier",
        help="the network: "
        + ", ".join(f"{key} (specs/{n.spec}.toml)" for key, n in NETWORKS.items()),
    )
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument(
        "--plot",
        type=Path,
        help="where to write the plot (default: "
        + ", ".join(f"{n.plot.name} for {key}" for key, n in NETWORKS.items())
        + ")",
    )
    arguments = parser.parse_args(argv)
    network = NETWORKS[arguments.spec]
    plot_path = arguments.plot or network.plot
    start = time.perf_counter()
    params, history, (x_train, x_test, y_train, y_test) = train(
        arguments.epochs, network=network
    )
    seconds = time.perf_counter() - start
    test_accuracy = accuracy(params, x_test, y_test, network)
    print(
        f"{network.spec}: {len(history.batch_loss)} SGD steps ({arguments.epochs} epochs of "
        f"{len(x_train)} images, batch {BATCH_SIZE}) in {seconds:.2f} s"
    )
    print(
        f"loss: training {history.train_loss[-1]:.4f}, test {history.test_loss[-1]:.4f}"
    )
    print(
        f"accuracy: training {accuracy(params, x_train, y_train, network):.1%}, "
        f"test {test_accuracy:.1%} ({round(test_accuracy * len(x_test))} of "
        f"{len(x_test)} held-out images)"
    )
    plot(history, test_accuracy, plot_path, network.title)
    print(f"wrote {plot_path}")
    return test_accuracy


if __name__ == "__main__":
    main()
