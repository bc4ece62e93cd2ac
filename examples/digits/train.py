"""Trains a handwritten-digit classifier and logs its progress to Trainyard.

The data is the 8x8 digits set that scikit-learn ships (1,797 images); when
scikit-learn is not installed, a generated stand-in of the same shape is used.
The model is a small two-layer network in plain numpy, trained with minibatch
gradient descent; loss and accuracy are logged every epoch, and the weights
are written to ./outputs.
"""

import argparse
import os

import numpy as np

from trainyard import Run


def load_data(rng):
    try:
        from sklearn.datasets import load_digits

        digits = load_digits()
        return digits.data / 16.0, digits.target, "scikit-learn digits"
    except ImportError:
        # Ten noisy variations around ten random 8x8 templates.
        templates = rng.random((10, 64))
        labels = rng.integers(0, 10, size=1797)
        images = templates[labels] + rng.normal(scale=0.25, size=(1797, 64))
        return np.clip(images, 0.0, 1.0), labels, "generated digits"


def one_hot(labels, classes=10):
    encoded = np.zeros((labels.size, classes))
    encoded[np.arange(labels.size), labels] = 1.0
    return encoded


def forward(params, x):
    hidden = np.maximum(0.0, x @ params["w1"] + params["b1"])
    logits = hidden @ params["w2"] + params["b2"]
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(axis=1, keepdims=True)
    return hidden, probs


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--learning-rate", type=float, default=0.5)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    run = Run.get_context()
    rng = np.random.default_rng(42)
    x, y, source = load_data(rng)
    print(f"data: {source}, {len(y)} images")
    order = rng.permutation(len(y))
    split = int(0.8 * len(y))
    train, test = order[:split], order[split:]
    x_train, y_train, x_test, y_test = x[train], y[train], x[test], y[test]

    params = {
        "w1": rng.normal(scale=np.sqrt(2.0 / 64), size=(64, args.hidden)),
        "b1": np.zeros(args.hidden),
        "w2": rng.normal(scale=np.sqrt(1.0 / args.hidden), size=(args.hidden, 10)),
        "b2": np.zeros(10),
    }
    run.log("learning_rate", args.learning_rate)
    run.log("hidden_units", args.hidden)

    for epoch in range(args.epochs):
        shuffled = rng.permutation(len(y_train))
        for start in range(0, len(shuffled), args.batch_size):
            batch = shuffled[start : start + args.batch_size]
            xb, yb = x_train[batch], one_hot(y_train[batch])
            hidden, probs = forward(params, xb)
            grad_logits = (probs - yb) / len(batch)
            grad_hidden = (grad_logits @ params["w2"].T) * (hidden > 0)
            params["w2"] -= args.learning_rate * hidden.T @ grad_logits
            params["b2"] -= args.learning_rate * grad_logits.sum(axis=0)
            params["w1"] -= args.learning_rate * xb.T @ grad_hidden
            params["b1"] -= args.learning_rate * grad_hidden.sum(axis=0)

        _, train_probs = forward(params, x_train)
        loss = float(-np.log(train_probs[np.arange(len(y_train)), y_train] + 1e-12).mean())
        _, test_probs = forward(params, x_test)
        accuracy = float((test_probs.argmax(axis=1) == y_test).mean())
        run.log("loss", loss, step=epoch)
        run.log("accuracy", accuracy, step=epoch)
        print(f"epoch {epoch:3d}  loss {loss:.4f}  accuracy {accuracy:.4f}")

    os.makedirs("outputs", exist_ok=True)
    np.savez("outputs/model.npz", **params)
    # A held-out sample travels with the model, so whoever loads it can check it.
    np.savez("outputs/holdout.npz", x=x_test[:100], y=y_test[:100])
    run.log_row("final", accuracy=accuracy, loss=loss, epochs=args.epochs)
    run.flush()
    print(f"final accuracy {accuracy:.4f}; model saved to outputs/model.npz")


if __name__ == "__main__":
    main()
