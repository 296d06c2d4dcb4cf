"""Poisson LDS on simulated spike counts: latent recovery by mean-field vs structured posteriors.

Archer et al. 2015, Sec. 4: a PLDS (exp link) is simulated; the generative model and an
amortized recognition network are fitted jointly by SGVB, once with the mean-field posterior and
once with the structured (block-tridiagonal precision) posterior. Latent recovery is the R^2 of
the best affine map from the posterior means to the true latents over all trials.
"""
import jax
import jax.numpy as jnp
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from latent_dynamics import evaluation, models, train  # noqa: E402
from launch import app  # noqa: E402


def simulate(config):
  """The true PLDS: rotational dynamics, Gaussian loadings, exp link. Returns params, x, y."""
  n, p = config.latent_dim, config.num_neurons
  th = config.rotation
  a = jnp.eye(n) * 0.97
  a = a.at[:2, :2].set(0.97 * jnp.asarray([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]]))
  model = models.make_model("plds", n, p)
  params = model.init(jax.random.key(config.seed + 1))
  lq = config.innovation_std * jnp.eye(n)
  params["dynamics"].update(a=a, q_raw=jnp.diag(jnp.log(jnp.diag(lq))),
                            log_q0_std=jnp.zeros(n))
  params["obs"]["c"] = config.loading_scale * jax.random.normal(jax.random.key(config.seed + 2),
                                                                (p, n))
  params["obs"]["d"] = jnp.full((p,), config.log_base_rate)
  keys = jax.random.split(jax.random.key(config.seed), config.num_trials)
  x, y = jax.vmap(lambda k: model.sample(params, k, config.num_steps))(keys)
  return params, x, y


def experiment(config, run: app.Run) -> dict:
  _, x, y = simulate(config)
  data = train.make_dataset(y)
  summary, curves, means = {}, {}, {}
  for kind in config.recognitions:
    tcfg = train.default_config()
    tcfg.update(config.train.to_dict())
    tcfg.update(latent_dim=config.latent_dim, recognition=kind)
    if tcfg.num_steps != config.num_chunks * tcfg.steps_per_chunk:
      raise ValueError("train.num_steps must equal num_chunks * train.steps_per_chunk.")
    trainer = train.make_trainer(tcfg, data)
    state = run.train_loop(lambda t=trainer: t.init(jax.random.key(config.seed)), trainer.chunk,
                           config.num_chunks, name=kind)
    q = jax.jit(trainer.recognition.posterior)(
        state.params["rec"], state.params["gen"],
        {"y": data.y, "mask": data.mask, "index": jnp.arange(config.num_trials)})
    means[kind] = np.asarray(q.mean())
    summary[f"r2_{kind}"] = float(evaluation.best_linear_map_r2(x, q.mean()))
    elbo, num_valid = jax.jit(trainer.elbo)(
        state.params, {"y": data.y, "mask": data.mask, "index": jnp.arange(config.num_trials)},
        jax.random.key(config.seed + 3))
    summary[f"elbo_per_step_{kind}"] = float(elbo / num_valid)
    curves[kind] = np.asarray(run.history(kind)["elbo_per_step"])

  fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
  for kind, curve in curves.items():
    axes[0].plot(curve, label=kind, alpha=0.8)
  axes[0].set(xlabel="SGVB step", ylabel="ELBO per bin", title="learning curves")
  axes[0].legend()
  xt = np.asarray(x[0])
  axes[1].plot(xt[:, 0], "k", label="true x[0]")
  for kind, m in means.items():
    design = np.concatenate([m.reshape(-1, m.shape[-1]), np.ones((m.shape[0] * m.shape[1], 1))], 1)
    coef = np.linalg.lstsq(design, np.asarray(x).reshape(-1, x.shape[-1]), rcond=None)[0]
    axes[1].plot((design @ coef).reshape(x.shape)[0, :, 0], "--",
                 label=f"{kind} (R^2={summary[f'r2_{kind}']:.2f})")
  axes[1].set(xlabel="bin", title="trial 0, latent 0 after the best affine map")
  axes[1].legend(fontsize=8)
  fig.tight_layout()
  run.save_figure("plds_latent_recovery", fig)
  return summary


if __name__ == "__main__":
  app.run(experiment)
