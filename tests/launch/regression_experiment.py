"""A small but complete experiment that exercises the launch framework in its tests.

Full-batch gradient descent on L2-regularised logistic regression over synthetic data, with the
data sharded over the mesh (each step's gradient is a mean over all examples, so a multi-device
run must all-reduce it) and a random feature-dropout mask per step drawn from the state's key (so
resumption must restore the key exactly). Runs as a real launcher:

  python tests/launch/regression_experiment.py \
      --config=tests/launch/regression_experiment.py:smoke --workdir=/tmp/run
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import ml_collections  # noqa: E402
import numpy as np  # noqa: E402

from launch import app, parallel  # noqa: E402


def get_config(preset: str = "smoke") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0                # Data and training randomness.
  c.num_examples = 512      # Rows of the synthetic design matrix (divisible by 4 devices).
  c.dim = 8                 # Features.
  c.learning_rate = 0.5     # Gradient-descent step size.
  c.l2 = 1e-3               # Weight decay.
  c.keep_prob = 0.9         # Per-step feature-dropout keep probability.
  c.steps_per_chunk = 20    # Steps per jitted chunk (one checkpoint per chunk).
  c.num_chunks = 4          # Chunks in the run.
  if preset == "kill":      # Long enough to be interrupted mid-run by the resume test.
    c.num_examples = 65536
    c.dim = 64
    c.steps_per_chunk = 300
    c.num_chunks = 8
  elif preset != "smoke":
    raise ValueError(f"unknown preset {preset!r}; expected 'smoke' or 'kill'.")
  return c


def make_data(config):
  key = jax.random.PRNGKey(config.seed + 1)
  kx, kw, ky = jax.random.split(key, 3)
  x = jax.random.normal(kx, (config.num_examples, config.dim))
  w_true = jax.random.normal(kw, (config.dim,))
  y = (jax.random.uniform(ky, (config.num_examples,)) < jax.nn.sigmoid(x @ w_true))
  return {"x": np.asarray(x), "y": np.asarray(y, np.float32)}


def make_chunk(config):
  def loss_fn(params, data, mask):
    logits = data["x"] @ (params["w"] * mask) + params["b"]
    nll = jnp.mean(jnp.logaddexp(0.0, logits) - data["y"] * logits)
    return nll + 0.5 * config.l2 * jnp.sum(params["w"] ** 2)

  def one_step(state, data):
    key, sub = jax.random.split(state["key"])
    mask = jax.random.bernoulli(sub, config.keep_prob, (config.dim,)) / config.keep_prob
    loss, grads = jax.value_and_grad(loss_fn)(state["params"], data, mask)
    params = jax.tree.map(lambda p, g: p - config.learning_rate * g, state["params"], grads)
    return {"params": params, "key": key, "step": state["step"] + 1}, {"loss": loss}

  def chunk(state, data):
    return jax.lax.scan(lambda s, _: one_step(s, data), state, None,
                        length=config.steps_per_chunk)

  return chunk


def experiment(config, run):
  def init_fn():
    return {"params": {"w": jnp.zeros(config.dim), "b": jnp.zeros(())},
            "key": jax.random.PRNGKey(config.seed), "step": jnp.zeros((), jnp.int32)}

  state = run.train_loop(init_fn, make_chunk(config), config.num_chunks, data=make_data(config))
  state = parallel.fetch(state)
  history = run.history()
  return {"final_loss": float(history["loss"][-1]), "first_loss": float(history["loss"][0]),
          "steps": int(state["step"]), "w": state["params"]["w"].tolist(),
          "b": float(state["params"]["b"])}


if __name__ == "__main__":
  app.run(experiment, default_config=__file__)
