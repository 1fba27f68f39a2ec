"""The model, data and training loop the trainer drives (numpy; this is the user's own code).

A dense network trained by SGD to imitate a fixed random "teacher" network on 100 shards of
synthetic data: wider and deeper students fit the teacher better, more data and more steps
help, and each run starts from random weights (as a TF trainer without a fixed seed), so
copies of one model differ. ``Controller`` is shaped like ``orbit.Controller`` as the Vertex
``tf_vision`` trainer drives it: ``global_step``, ``_train_n_steps``, ``evaluate``,
``_maybe_save_checkpoint``.
"""

import fnmatch
import glob
import itertools
import json
import os
import time

import numpy as np

NUM_SHARDS = 100
SHARD_SIZE = 60
NUM_FEATURES = 16
NUM_CLASSES = 6
BATCH_SIZE = 32


def _teacher_dataset():
    """All 100 shards and the validation set, the same in every process."""
    rng = np.random.default_rng(1234)
    w1 = rng.normal(size=(NUM_FEATURES, 48)) / np.sqrt(NUM_FEATURES)
    w2 = rng.normal(size=(48, NUM_CLASSES)) / np.sqrt(48)

    def label(x):
        return np.argmax(np.tanh(x @ w1 * 2.0) @ w2, axis=1)

    x = rng.normal(size=(NUM_SHARDS * SHARD_SIZE + 1000, NUM_FEATURES))
    y = label(x)
    names = [f"train-{i:05d}-of-{NUM_SHARDS:05d}" for i in range(NUM_SHARDS)]
    shards = {
        name: (x[i * SHARD_SIZE : (i + 1) * SHARD_SIZE], y[i * SHARD_SIZE : (i + 1) * SHARD_SIZE])
        for i, name in enumerate(names)
    }
    return shards, (x[-1000:], y[-1000:])


def load_data(training_data_path):
    """The shards whose names match the path's file pattern, e.g. ``.../train-*-of-00100``."""
    pattern = training_data_path.rsplit("/", 1)[-1]
    shards, validation = _teacher_dataset()
    chosen = [name for name in sorted(shards) if fnmatch.fnmatch(name, pattern)]
    if not chosen:
        raise ValueError(f"No training shard matches {training_data_path}")
    x = np.concatenate([shards[name][0] for name in chosen])
    y = np.concatenate([shards[name][1] for name in chosen])
    return (x, y), validation


class Mlp:
    """A dense network: ``num_layers`` hidden layers of ``hidden_units``."""

    def __init__(self, spec, rng):
        self.activation = spec.activation
        sizes = [NUM_FEATURES] + [spec.hidden_units] * spec.num_layers + [NUM_CLASSES]
        self.weights = [
            rng.normal(size=(a, b)) * np.sqrt(2.0 / a) for a, b in itertools.pairwise(sizes)
        ]
        self.biases = [np.zeros(b) for b in sizes[1:]]

    def _act(self, z):
        return np.maximum(z, 0.0) if self.activation == "relu" else np.tanh(z)

    def _act_grad(self, a):
        return (a > 0).astype(a.dtype) if self.activation == "relu" else 1.0 - a * a

    def forward(self, x):
        outs = [x]
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            z = outs[-1] @ w + b
            outs.append(z if i == len(self.weights) - 1 else self._act(z))
        return outs

    def predict(self, x):
        return self.forward(x)[-1]

    def sgd_step(self, x, y, learning_rate):
        outs = self.forward(x)
        logits = outs[-1] - outs[-1].max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        grad = probs
        grad[np.arange(len(y)), y] -= 1.0
        grad /= len(y)
        for i in reversed(range(len(self.weights))):
            gw = outs[i].T @ grad
            gb = grad.sum(axis=0)
            if i:
                grad = (grad @ self.weights[i].T) * self._act_grad(outs[i])
            self.weights[i] -= learning_rate * gw
            self.biases[i] -= learning_rate * gb

    def state(self):
        arrays = {f"w{i}": w for i, w in enumerate(self.weights)}
        arrays.update({f"b{i}": b for i, b in enumerate(self.biases)})
        return arrays

    def load_state(self, arrays):
        self.weights = [arrays[f"w{i}"] for i in range(len(self.weights))]
        self.biases = [arrays[f"b{i}"] for i in range(len(self.biases))]


class Controller:
    """Trains, evaluates and checkpoints one model, like the ``orbit.Controller`` of tf_vision."""

    def __init__(self, spec, training_data_path, model_dir, init_checkpoint=None):
        self.spec = spec
        self.model_dir = model_dir
        (self.train_x, self.train_y), (self.val_x, self.val_y) = load_data(training_data_path)
        self.rng = np.random.default_rng(int.from_bytes(os.urandom(4), "little"))
        self.model = Mlp(spec, self.rng)
        self.global_step = 0
        restore_from = self.latest_checkpoint(model_dir) or init_checkpoint
        if restore_from:
            self._restore(restore_from)

    @staticmethod
    def latest_checkpoint(directory):
        """The newest ``ckpt-<step>.npz`` in ``directory``, or None."""
        found = glob.glob(os.path.join(directory, "ckpt-*.npz")) if directory else []
        return max(found, key=lambda p: int(p.rsplit("-", 1)[1][:-4])) if found else None

    def _restore(self, path):
        if os.path.isdir(path):
            path = self.latest_checkpoint(path)
        with np.load(path) as arrays:
            self.model.load_state({k: arrays[k] for k in arrays.files if k != "global_step"})
            self.global_step = int(arrays["global_step"])

    def _train_n_steps(self, num_steps):
        for _ in range(num_steps):
            batch = self.rng.integers(0, len(self.train_y), size=BATCH_SIZE)
            self.model.sgd_step(self.train_x[batch], self.train_y[batch], self.spec.learning_rate)
            self.global_step += 1

    def evaluate(self, steps=None):
        del steps  # the whole validation set
        logits = self.model.predict(self.val_x)
        if not np.all(np.isfinite(logits)):
            raise ValueError("NaN in the model outputs.")
        accuracy = float(np.mean(np.argmax(logits, axis=1) == self.val_y))
        return {"accuracy": accuracy}

    def _maybe_save_checkpoint(self, check_interval=True):
        del check_interval
        path = os.path.join(self.model_dir, f"ckpt-{self.global_step}.npz")
        np.savez(path + ".tmp.npz", global_step=self.global_step, **self.model.state())
        os.replace(path + ".tmp.npz", path)

    def export_saved_model(self, export_dir):
        """Write the model for the latency calculator; ``saved_model.pb`` last."""
        os.makedirs(export_dir, exist_ok=True)
        np.savez(os.path.join(export_dir, "variables.npz"), **self.model.state())
        graph = {"activation": self.spec.activation, "num_layers": self.spec.num_layers}
        with open(os.path.join(export_dir, "saved_model.pb.tmp"), "w") as f:
            json.dump(graph, f)
        os.replace(
            os.path.join(export_dir, "saved_model.pb.tmp"),
            os.path.join(export_dir, "saved_model.pb"),
        )


def time_inference(export_dir, batch_size=256, repetitions=20):
    """Milliseconds per batch of the exported model (used by the latency calculator)."""
    with open(os.path.join(export_dir, "saved_model.pb")) as f:
        graph = json.load(f)
    with np.load(os.path.join(export_dir, "variables.npz")) as arrays:
        state = {k: arrays[k] for k in arrays.files}
    layers = graph["num_layers"] + 1
    act = (lambda z: np.maximum(z, 0.0)) if graph["activation"] == "relu" else np.tanh
    x = np.random.default_rng(0).normal(size=(batch_size, NUM_FEATURES))

    def run():
        h = x
        for i in range(layers):
            h = h @ state[f"w{i}"] + state[f"b{i}"]
            if i < layers - 1:
                h = act(h)
        return h

    run()
    best = float("inf")
    for _ in range(5):
        tic = time.perf_counter()
        for _ in range(repetitions):
            run()
        best = min(best, (time.perf_counter() - tic) / repetitions * 1000.0)
    return best
