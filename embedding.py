"""Search in a learned embedding space (`--strategy=embedding`): this project's design
after the idea of searching a learned architecture embedding (docs/REFERENCES.md#embedding).

1. An architecture autoencoder (Keras): the encoder maps an architecture's decisions,
   one-hot and concatenated, through a hidden layer to a `latent`-dimensional point;
   the decoder maps a point back to one softmax per decision. It is pre-trained on
   random architectures of the space (cross-entropy of every decision), with Gaussian
   noise on the latent point and an L2 penalty on it, so that nearby points decode to
   similar architectures and the points stay near the origin. Trained once per run
   and kept in the run folder (`embedding/autoencoder.weights.npz`, with
   `embedding/pretrain.json`: its reconstruction accuracy), so a resumed run reuses it.
2. A Gaussian policy N(mu, diag(sigma^2)) over the latent space, initialized to the
   mean and spread of the pre-training architectures' codes, trained by REINFORCE on
   the loop's advantages (accuracy minus the same moving-average baseline as the
   controller): loss = -mean(A * log N(z | mu, sigma)), Adam. sigma is kept above
   `min_sigma` times its initial value, so the policy never stops exploring.
3. A sampled point is decoded by taking each decision's most likely choice, which is
   always a valid architecture of the space.

Uses `keras` and `keras.ops` only (any backend).
"""

import json
import math
import os
import time

import keras
import numpy as np
from keras import ops

from manager import build_for_training
from run_log import load_arrays, save_arrays, write_json

AUTOENCODER_FILE = "autoencoder.weights.npz"  # every variable of the autoencoder, in order

DEFAULTS = dict(
    latent=None,  # Dimensions of the embedding; None: one per decision, at most 24.
    hidden=128,  # Units of the encoder's and decoder's hidden layer.
    pretrain_samples=2000,  # Random architectures the autoencoder is trained on.
    pretrain_epochs=60,  # (6-layer macro space: every decision of the 2,000 reconstructed.)
    noise=0.1,  # Gaussian noise on the latent point while pre-training.
    l2=1e-3,  # L2 penalty on the latent point.
    learning_rate=0.1,  # Adam, of the Gaussian policy (a synthetic target, 16 updates of 4: 0.05-0.4 alike).
    min_sigma=0.1,  # sigma >= min_sigma * its initial value.
)


class EmbeddingError(ValueError):
    """A bad setting or saved state of the embedding strategy."""


class Autoencoder:
    """Encodes architectures of `space` to points of R^latent and decodes points back."""

    def __init__(self, space, seed=0, latent=8, hidden=128, noise=0.1, l2=1e-3):
        self.space = space
        self.sizes = [len(d.choices) for d in space.decisions]
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).astype(int)
        width = int(self.offsets[-1])
        seeds = iter(range(seed * 100 + 1, seed * 100 + 100))

        def init():
            return keras.initializers.GlorotUniform(seed=next(seeds))

        inputs = keras.Input((width,))
        x = keras.layers.Dense(hidden, activation="relu", kernel_initializer=init())(inputs)
        code = keras.layers.Dense(
            latent,
            kernel_initializer=init(),
            activity_regularizer=keras.regularizers.L2(l2) if l2 else None,
            name="code",
        )(x)
        self.encoder = keras.Model(inputs, code, name="encoder")
        point = keras.Input((latent,))
        y = keras.layers.Dense(hidden, activation="relu", kernel_initializer=init())(point)
        logits = keras.layers.Dense(width, kernel_initializer=init())(y)
        self.decoder = keras.Model(point, logits, name="decoder")
        noisy = keras.layers.GaussianNoise(noise, seed=next(seeds))(self.encoder(inputs))
        self.model = keras.Model(inputs, self.decoder(noisy), name="autoencoder")
        self.latent = latent

    def one_hot(self, architectures):
        """(n, total choices): each decision's choice one-hot, concatenated."""
        indices = np.array([self.space.encode(a) for a in architectures], "int64")
        out = np.zeros((len(indices), int(self.offsets[-1])), "float32")
        rows = np.arange(len(indices))
        for d, start in enumerate(self.offsets[:-1]):
            out[rows, start + indices[:, d]] = 1.0
        return out

    def loss(self, y_true, logits):
        """Cross-entropy of every decision, summed over decisions."""
        total = 0.0
        for start, stop in zip(self.offsets[:-1], self.offsets[1:]):
            log_p = ops.log_softmax(logits[:, start:stop], axis=-1)
            total = total - ops.sum(y_true[:, start:stop] * log_p, axis=-1)
        return total

    def pretrain(self, rng, samples, epochs, batch_size=64):
        """Trains on `samples` random architectures; returns a dict of its reconstruction
        accuracy (fraction of decisions, and of whole architectures, decoded right) on
        them and on 500 random architectures drawn afterwards (`held_out_*`)."""
        architectures = self.space.sample(rng, samples)
        x = self.one_hot(architectures)
        self.model.compile(optimizer=keras.optimizers.Adam(3e-3), loss=self.loss)
        build_for_training(self.model, x[:1], x[:1])
        history = self.model.fit(x, x, epochs=epochs, batch_size=batch_size, verbose=0, shuffle=False)
        report = {"samples": samples, "epochs": epochs, "final_loss": float(history.history["loss"][-1])}
        held_out = self.space.sample(rng, 500)  # Drawn after the training set: mostly new.
        for prefix, sample in (("", architectures), ("held_out_", held_out)):
            original = np.array([self.space.encode(a) for a in sample])
            decoded = np.array([self.space.encode(a) for a in self.decode(self.encode(sample))])
            report[prefix + "decisions_reconstructed"] = float(np.mean(original == decoded))
            report[prefix + "architectures_reconstructed"] = float(
                np.mean(np.all(original == decoded, axis=1))
            )
        return report

    def encode(self, architectures):
        """(n, latent): the codes of `architectures` (no noise)."""
        return np.asarray(self.encoder.predict_on_batch(self.one_hot(architectures)))

    def decode(self, points):
        """Architectures of the space: each decision's most likely choice at each point
        (always valid: one choice per decision, from that decision's choices)."""
        logits = np.asarray(self.decoder.predict_on_batch(np.asarray(points, "float32")))
        indices = np.stack(
            [
                np.argmax(logits[:, start:stop], axis=-1)
                for start, stop in zip(self.offsets[:-1], self.offsets[1:])
            ],
            axis=1,
        )
        return [self.space.decode(row) for row in indices]


class _GaussianPolicy(keras.Model):
    """log N(z | mu, diag(exp(log_sigma))^2) of each row z."""

    def __init__(self, mu, log_sigma, **kwargs):
        super().__init__(**kwargs)
        self.mu = self.add_weight(
            shape=mu.shape, initializer=keras.initializers.Constant(mu), name="mu"
        )
        self.log_sigma = self.add_weight(
            shape=mu.shape, initializer=keras.initializers.Constant(log_sigma), name="log_sigma"
        )

    def build(self, input_shape):
        self.built = True

    def call(self, z):
        standard = (z - self.mu) / ops.exp(self.log_sigma)
        return -0.5 * ops.sum(ops.square(standard), axis=-1) - ops.sum(self.log_sigma) - (
            0.5 * self.mu.shape[0] * math.log(2 * math.pi)
        )


def _reinforce(advantages, log_prob):
    return -advantages[:, 0] * log_prob


class EmbeddingStrategy:
    """The strategy protocol (strategies.py) over the embedding space.

    Args:
      space: the StateSpace.
      seed: seeds the autoencoder, its pre-training data and the policy's samples.
      run_dir: the run folder; the autoencoder is read from `run_dir/embedding/` if
        it was trained there before, else trained, and written there by the first
        `save` (the loop's first checkpoint, made with the run folder locked: nothing
        is written into a run folder before that, so a start that fails leaves none).
      out: where progress lines go.
    """

    def __init__(self, space, seed, run_dir, out=print, **settings):
        unknown = set(settings) - set(DEFAULTS)
        if unknown:
            raise EmbeddingError(f"unknown embedding setting(s) {sorted(unknown)}; allowed: {sorted(DEFAULTS)}")
        self.settings = {**DEFAULTS, **settings}
        s = self.settings
        if s["latent"] is None:
            s["latent"] = min(len(space.decisions), 24)
        if s["latent"] < 1 or s["hidden"] < 1 or s["pretrain_samples"] < 2 or s["pretrain_epochs"] < 1:
            raise EmbeddingError(f"embedding sizes must be >= 1 (samples >= 2), got {s}")
        if not 0 < s["min_sigma"] <= 1:
            raise EmbeddingError(f"min_sigma must be in (0, 1], got {s['min_sigma']}")
        self.space = space
        self.seed = int(seed)
        self.rng = np.random.default_rng([self.seed, 0xE5])
        self.autoencoder = Autoencoder(
            space, self.seed, s["latent"], s["hidden"], s["noise"], s["l2"]
        )
        self._folder = os.path.join(run_dir, "embedding") if run_dir else None
        self._unkept = None  # The pre-training's report until `save` keeps it.
        self.pretrain_report = self._pretrained(self._folder, out)
        codes = self.autoencoder.encode(space.sample(np.random.default_rng([self.seed, 1]), 500))
        mu, sigma = codes.mean(axis=0), codes.std(axis=0) + 1e-3
        self.sigma_floor = np.log(s["min_sigma"] * sigma).astype("float32")
        self.policy = _GaussianPolicy(
            mu.astype("float32"), np.log(sigma).astype("float32"), name="embedding_policy"
        )
        self.policy.compile(optimizer=keras.optimizers.Adam(s["learning_rate"]), loss=_reinforce)
        self.policy(np.zeros((1, s["latent"]), "float32"))
        self.policy.optimizer.build(self.policy.trainable_variables)
        self.updates = 0
        self.last = None  # (architectures, points) of the last propose().

    def _pretrained(self, folder, out):
        s = self.settings
        weights = folder and os.path.join(folder, AUTOENCODER_FILE)
        if weights and os.path.exists(weights):
            try:
                load_arrays(weights, self.autoencoder.model.weights)
                with open(os.path.join(folder, "pretrain.json")) as f:
                    return json.load(f)
            except (OSError, ValueError) as e:
                raise EmbeddingError(f"cannot read the autoencoder in {folder}: {e}") from None
        start = time.perf_counter()
        report = self.autoencoder.pretrain(
            np.random.default_rng([self.seed, 2]), s["pretrain_samples"], s["pretrain_epochs"]
        )
        report["seconds"] = round(time.perf_counter() - start, 2)
        out(
            f"embedding: autoencoder pre-trained on {s['pretrain_samples']} random architectures; "
            f"{report['decisions_reconstructed']:.3f} of decisions and "
            f"{report['architectures_reconstructed']:.3f} of architectures reconstructed "
            f"({report['seconds']:.1f} s, before the search's clock starts)"
        )
        self._unkept = {**report, "settings": s}
        return report

    def _keep(self):
        """Writes the pre-trained autoencoder into the run's embedding/ folder, once."""
        if self._folder is None or self._unkept is None:
            return
        os.makedirs(self._folder, exist_ok=True)
        save_arrays(os.path.join(self._folder, AUTOENCODER_FILE), self.autoencoder.model.weights)
        write_json(os.path.join(self._folder, "pretrain.json"), self._unkept)
        self._unkept = None

    def sigma(self):
        return np.exp(np.asarray(self.policy.log_sigma))

    def propose(self, n):
        mu, sigma = np.asarray(self.policy.mu), self.sigma()
        points = (mu + sigma * self.rng.standard_normal((n, len(mu)))).astype("float32")
        architectures = self.autoencoder.decode(points)
        self.last = (architectures, points)
        return architectures

    def points_of(self, architectures):
        """The sampled points of the last proposal, when these are its architectures;
        otherwise (proposals made elsewhere) the codes of the architectures."""
        if self.last is not None and [tuple(a) for a in self.last[0]] == [tuple(a) for a in architectures]:
            return np.asarray(self.last[1], "float32")
        return self.autoencoder.encode(architectures).astype("float32")

    def learn(self, architectures, results):
        points = self.points_of(architectures)
        advantages = np.array([[r.reward] for r in results], "float32")
        loss = float(np.mean(-advantages[:, 0] * np.asarray(self.policy.predict_on_batch(points))))
        self.policy.train_on_batch(points, advantages)
        self.policy.log_sigma.assign(np.maximum(np.asarray(self.policy.log_sigma), self.sigma_floor))
        self.updates += 1
        sigma = self.sigma()
        return {
            "embedding/loss": loss,
            "embedding/sigma": float(np.mean(sigma)),
            "embedding/mu_norm": float(np.linalg.norm(np.asarray(self.policy.mu))),
        }

    def get_state(self):
        last = None
        if self.last is not None:
            encoded = [[int(i) for i in self.space.encode(a)] for a in self.last[0]]
            last = [encoded, np.asarray(self.last[1]).tolist()]
        return {"updates": self.updates, "rng": self.rng.bit_generator.state, "last": last}

    def set_state(self, state):
        self.updates = int(state["updates"])
        self.rng.bit_generator.state = state["rng"]
        last = state.get("last")
        if last is None:
            self.last = None
        else:
            architectures = [tuple(self.space.decode(row)) for row in last[0]]
            self.last = (architectures, np.asarray(last[1], "float32"))

    def save(self, directory):
        """The policy's mean, spread and optimizer state (the autoencoder is kept once,
        in the run's embedding/ folder, written by the first save)."""
        self._keep()
        os.makedirs(directory, exist_ok=True)
        save_arrays(
            os.path.join(directory, "embedding_policy.npz"),
            self.policy.variables + self.policy.optimizer.variables,
        )

    def load(self, directory):
        path = os.path.join(directory, "embedding_policy.npz")
        try:
            load_arrays(path, self.policy.variables + self.policy.optimizer.variables)
        except ValueError as e:
            raise EmbeddingError(f"cannot load the embedding policy from {path}: {e}") from None
