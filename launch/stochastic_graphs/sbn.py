"""Sigmoid belief nets on binarised scikit-learn digits, trained with each gradient estimator.

The model and its estimator choices live in `stochastic_graphs.models.sbn` (linear SBNs as in
NVIL and REBAR; the negative ELBO as costs of a `stochastic_graphs` model). This launcher loads
the data, trains one run per (layers, estimator) in the resumable loop and reports the
training/test ELBO and the encoder gradient variance (trace of the covariance over independent
estimates on a fixed minibatch) over training.
"""
import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

from launch import app, parallel  # noqa: E402
from stochastic_graphs.models import sbn  # noqa: E402


def load_data(config):
  x = (load_digits().data > 7).astype(np.float32)
  perm = np.random.RandomState(config.seed).permutation(len(x))
  n_test = int(len(x) * config.test_fraction)
  return x[perm[n_test:]], x[perm[:n_test]]


def run_one(config, run, layers, estimator, train, test):
  trainer = sbn.make_trainer(
      layers, estimator, train[:config.var_examples], hidden=config.hidden,
      learning_rate=config.learning_rate, batch_size=config.batch_size, ma_decay=config.ma_decay,
      num_samples=config.num_samples, temperature=config.temperature,
      var_samples=config.var_samples, steps_per_chunk=config.steps_per_chunk)
  name = f"l{layers}_{estimator}"
  state = parallel.fetch(run.train_loop(
      lambda: trainer.init(jax.random.PRNGKey(config.seed), train.mean(0)), trainer.chunk,
      config.num_chunks, name=name, data=jnp.asarray(train)))
  test_elbo = -float(jax.jit(trainer.neg_elbo)(state["params"], jnp.asarray(test),
                                              jax.random.PRNGKey(99)))
  return run.history(name), test_elbo


def experiment(config, run: app.Run) -> dict:
  train, test = load_data(config)
  summary = {"train_examples": len(train), "test_examples": len(test)}
  curves = {}
  for layers in config.layers:
    for estimator in config.estimators:
      hist, test_elbo = run_one(config, run, layers, estimator, train, test)
      per_chunk = config.steps_per_chunk
      elbo = -np.asarray(hist["train_neg_elbo"])[per_chunk - 1::per_chunk]
      var = np.asarray(hist["encoder_grad_variance"])[per_chunk - 1::per_chunk]
      curves[(layers, estimator)] = (elbo, var)
      summary[f"final_train_elbo/{layers}/{estimator}"] = float(elbo[-1])
      summary[f"test_elbo/{layers}/{estimator}"] = test_elbo
      summary[f"mean_log10_var/{layers}/{estimator}"] = float(np.mean(np.log10(var + 1e-30)))
  fig, axes = plt.subplots(2, len(config.layers), figsize=(6 * len(config.layers), 8),
                           squeeze=False)
  for j, layers in enumerate(config.layers):
    for estimator in config.estimators:
      elbo, var = curves[(layers, estimator)]
      steps = np.arange(1, len(elbo) + 1) * config.steps_per_chunk
      axes[0, j].plot(steps, elbo, marker="o", label=estimator)
      axes[1, j].semilogy(steps, var, marker="o", label=estimator)
    axes[0, j].set(title=f"{layers} stochastic layer(s): training ELBO", xlabel="step")
    axes[1, j].set(title="encoder gradient variance", xlabel="step")
  axes[0, 0].legend(fontsize=7)
  fig.tight_layout()
  run.save_figure("sbn_elbo_variance", fig)
  return summary


if __name__ == "__main__":
  app.run(experiment)
