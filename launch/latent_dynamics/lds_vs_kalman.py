"""A known LDS: the fitted VILDS structured posterior against the exact Kalman smoother.

Archer et al. 2015, Sec. 4: with the generative model fixed to the truth, the structured
Gaussian posterior (block-tridiagonal precision R R^T) fitted by SGVB should match the exact
smoothing posterior. Reports the relative error of the posterior means and marginal variances and
the gap between the final ELBO and log p(y); plots means and 2-sd bands over time for both.
"""
import jax
import jax.numpy as jnp
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from latent_dynamics import kalman, models, train  # noqa: E402
from launch import app  # noqa: E402


def simulate(config):
  n, p = config.latent_dim, config.obs_dim
  th = config.rotation
  rot = jnp.eye(n)
  rot = rot.at[:2, :2].set(jnp.asarray([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]]))
  c = jax.random.normal(jax.random.key(config.seed + 1), (p, n)) / np.sqrt(n)
  params = models.lds_params(0.95 * rot, config.innovation_std ** 2 * jnp.eye(n), c,
                             config.obs_std * jnp.ones(p))
  model = models.make_model("lds", n, p)
  x, y = model.sample(params, jax.random.key(config.seed), config.num_steps)
  return params, x, y


def experiment(config, run: app.Run) -> dict:
  params, x, y = simulate(config)
  data = train.make_dataset(y[None])
  tcfg = train.default_config()
  tcfg.update(config.train.to_dict())
  tcfg.latent_dim = config.latent_dim
  trainer = train.make_trainer(tcfg, data, gen_params=params)
  num_chunks = config.num_chunks
  if tcfg.num_steps != num_chunks * tcfg.steps_per_chunk:
    raise ValueError(f"train.num_steps ({tcfg.num_steps}) must equal num_chunks * "
                     f"train.steps_per_chunk ({num_chunks} * {tcfg.steps_per_chunk}).")
  state = run.train_loop(lambda: trainer.init(jax.random.key(config.seed)), trainer.chunk,
                         num_chunks)
  q = trainer.recognition.posterior(state.params["rec"], params,
                                    {"y": data.y, "mask": data.mask, "index": jnp.array([0])})
  d = models.dynamics(params)
  ks = kalman.kalman_smoother(d["m0"], d["lq0"] @ d["lq0"].T, d["a"], d["lq"] @ d["lq"].T,
                              params["obs"]["c"], jnp.diag(jnp.exp(2 * params["obs"]["log_r"])),
                              y)
  mean, var = np.asarray(q.mean()[0]), np.asarray(q.variance()[0])
  km, kv = np.asarray(ks.smoothed_means), np.asarray(jnp.diagonal(ks.smoothed_covs, 0, 1, 2))
  cross = np.asarray(q.cross_covariances()[0])
  hist = run.history()
  elbo = np.asarray(hist["elbo_per_step"])
  summary = {
      "mean_rel_err": float(np.linalg.norm(mean - km) / np.linalg.norm(km)),
      "var_max_rel_err": float(np.max(np.abs(var - kv) / kv)),
      "var_mean_rel_err": float(np.mean(np.abs(var - kv) / kv)),
      "cross_cov_max_abs_err": float(np.max(np.abs(cross - np.asarray(ks.cross_covs)))),
      "final_elbo_per_step": float(elbo[-max(1, len(elbo) // 20):].mean()),
      "log_lik_per_step": float(ks.log_likelihood) / config.num_steps,
  }
  summary["elbo_gap_per_step"] = summary["log_lik_per_step"] - summary["final_elbo_per_step"]
  run.log_metrics(int(tcfg.num_steps), {k: v for k, v in summary.items()})

  t = np.arange(config.num_steps)
  fig, axes = plt.subplots(config.latent_dim + 1, 1, figsize=(9, 2.4 * (config.latent_dim + 1)))
  for i in range(config.latent_dim):
    ax = axes[i]
    ax.plot(t, np.asarray(x)[:, i], "k.", ms=3, label="true x")
    ax.plot(t, km[:, i], "C0", label="Kalman smoother")
    ax.fill_between(t, km[:, i] - 2 * np.sqrt(kv[:, i]), km[:, i] + 2 * np.sqrt(kv[:, i]),
                    color="C0", alpha=0.25)
    ax.plot(t, mean[:, i], "C3--", label="VILDS structured q")
    ax.fill_between(t, mean[:, i] - 2 * np.sqrt(var[:, i]), mean[:, i] + 2 * np.sqrt(var[:, i]),
                    color="C3", alpha=0.15)
    ax.set(ylabel=f"x[{i}]")
  axes[0].legend(loc="upper right", fontsize=8)
  axes[0].set_title("posterior means and 2-sd bands")
  axes[-1].plot(elbo, label="ELBO per step")
  axes[-1].axhline(summary["log_lik_per_step"], color="k", ls=":", label="log p(y) / T")
  axes[-1].set(xlabel="SGVB step", ylim=(summary["log_lik_per_step"] - 1.0,
                                          summary["log_lik_per_step"] + 0.2))
  axes[-1].legend(fontsize=8)
  fig.tight_layout()
  run.save_figure("posterior_vs_kalman", fig)
  return summary


if __name__ == "__main__":
  app.run(experiment)
