"""Train a 64-32-10 classifier on handwritten digits with the gradients derive wrote.

    python examples/train_digits.py       # a few seconds; writes examples/results/digits_loss.png

The data are scikit-learn's bundled digits (1,797 images of 8x8 pixels, shipped inside
the package: nothing is downloaded); a stratified quarter is held out for testing. The
network is ``specs/digits_classifier.toml`` and its gradients are the committed
``generated/digits_classifier.py``: plain NumPy, imported without derive, SymPy or any
autodiff library. Training is minibatch SGD written out below in a few lines of NumPy.
(From a notebook, ``derive.build("specs/digits_classifier.toml")`` gives the same
module without the file.)

Every random choice (the split, the initial weights, the batch order) comes from fixed
seeds, so a run gives the same numbers and the same plot every time.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "generated"))
import digits_classifier as net  # noqa: E402  (generated/digits_classifier.py)

PLOT = ROOT / "examples" / "results" / "digits_loss.png"
SEED = 0
BATCH_SIZE = 32
LEARNING_RATE = 0.1
EPOCHS = 40
#: Steps between two evaluations of the loss on the whole training and test sets.
EVALUATE_EVERY = 20

Params = dict[str, np.ndarray]


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


def initial_parameters(seed: int = SEED) -> Params:
    """He-normal weights (suited to ReLU), zero biases, in the generated shapes."""
    rng = np.random.default_rng(seed)
    params = {}
    for name, shape in net.PARAMETER_SHAPES.items():
        if name.startswith("W"):
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
    params: Mapping[str, np.ndarray], x: np.ndarray, y: np.ndarray, rate: float
) -> tuple[float, Params]:
    """The minibatch's loss at ``params``, and ``params`` after one SGD step."""
    loss = float(net.loss(params, x, y))
    gradients = net.gradients(params, x, y)
    return loss, {
        name: value - rate * gradients[name] for name, value in params.items()
    }


def accuracy(params: Mapping[str, np.ndarray], x: np.ndarray, y: np.ndarray) -> float:
    """The fraction of samples whose largest logit is their class."""
    logits = net.forward(params, x)["y_predicted"]
    return float(np.mean(np.argmax(logits, axis=1) == y))


@dataclass
class History:
    """Losses during training: each minibatch's, and the whole sets' now and then."""

    batch_loss: list[float] = field(default_factory=list)
    evaluated_at: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)


def train(
    epochs: int = EPOCHS, seed: int = SEED
) -> tuple[Params, History, tuple[np.ndarray, ...]]:
    """Train from ``seed``'s initial weights; return the parameters, the history and
    the data ``(x_train, x_test, y_train, y_test)``."""
    x_train, x_test, y_train, y_test = load_data(seed)
    params = initial_parameters(seed)
    history = History()

    def evaluate(step: int) -> None:
        history.evaluated_at.append(step)
        history.train_loss.append(float(net.loss(params, x_train, y_train)))
        history.test_loss.append(float(net.loss(params, x_test, y_test)))

    for step, batch in enumerate(batches(len(x_train), epochs, seed=seed)):
        if step % EVALUATE_EVERY == 0:
            evaluate(step)
        loss, params = sgd_step(params, x_train[batch], y_train[batch], LEARNING_RATE)
        history.batch_loss.append(loss)
    evaluate(len(history.batch_loss))
    return params, history, (x_train, x_test, y_train, y_test)


def plot(history: History, accuracy_test: float, path: Path) -> None:
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
    axes.set_title("64-32-10 ReLU network on scikit-learn's digits, derive's gradients")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, metadata={"Software": None})
    plt.close(figure)


def main(argv: list[str] | None = None) -> float:
    """Train, report, plot; return the test accuracy."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument(
        "--plot", type=Path, default=PLOT, help=f"where to write the plot ({PLOT.name})"
    )
    arguments = parser.parse_args(argv)
    start = time.perf_counter()
    params, history, (x_train, x_test, y_train, y_test) = train(arguments.epochs)
    seconds = time.perf_counter() - start
    test_accuracy = accuracy(params, x_test, y_test)
    print(
        f"{len(history.batch_loss)} SGD steps ({arguments.epochs} epochs of "
        f"{len(x_train)} images, batch {BATCH_SIZE}) in {seconds:.2f} s"
    )
    print(
        f"loss: training {history.train_loss[-1]:.4f}, test {history.test_loss[-1]:.4f}"
    )
    print(
        f"accuracy: training {accuracy(params, x_train, y_train):.1%}, "
        f"test {test_accuracy:.1%} ({round(test_accuracy * len(x_test))} of "
        f"{len(x_test)} held-out images)"
    )
    plot(history, test_accuracy, arguments.plot)
    print(f"wrote {arguments.plot}")
    return test_accuracy


if __name__ == "__main__":
    main()
