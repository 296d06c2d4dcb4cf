"""fLDS vs PLDS: predictive log-likelihood against latent dimension (Gao et al. 2016, experiments).

The simulated population has a 2-d rotational latent and neurons with Gaussian tuning curves in
latent space (rates are a nonlinear function of the latent). For every latent dimension both an
fLDS (neural-network embedding) and a PLDS (linear embedding, exp link) are fitted with the
fLDS smoothing posterior, trained with neuron dropout in the recognition input so that it can
infer latents with a neuron held out. On held-out trials we report the one-step-ahead predictive
log-likelihood per bin and the leave-one-neuron-out log-likelihood per neuron and bin. The
paper's finding is that PLDS needs more latent dimensions than fLDS to predict as well.
"""
import jax
import jax.numpy as jnp
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from latent_dynamics import evaluation, models, train  # noqa: E402
from launch import app  # noqa: E402


def simulate(config, num_trials, key):
  """x (N, T, 2) from a rotational LDS; y ~ Poisson(base + max * exp(-|x - c_i|^2 / 2 w^2))."""
  n = config.true_latent_dim
  th = config.rotation
  a = 0.97 * jnp.eye(n)
  a = a.at[:2, :2].set(0.97 * jnp.asarray([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]]))
  lds = models.make_model("lds", n, 1)
  params = models.lds_params(a, config.innovation_std ** 2 * jnp.eye(n), jnp.zeros((1, n)),
                             jnp.ones(1))
  k_x, k_y = jax.random.split(key)
  x, _ = jax.vmap(lambda k: lds.sample(params, k, config.num_steps))(
      jax.random.split(k_x, num_trials))
  centres = jax.random.uniform(jax.random.key(config.seed + 7), (config.num_neurons, n),
                               minval=-1.5, maxval=1.5)
  sq = jnp.sum((x[..., None, :] - centres) ** 2, axis=-1)
  rates = config.base_rate + config.max_rate * jnp.exp(-sq / (2 * config.field_width ** 2))
  y = jax.random.poisson(k_y, rates).astype(jnp.float32)
  return x, y


def experiment(config, run: app.Run) -> dict:
  _, y = simulate(config, config.num_trials, jax.random.key(config.seed))
  _, y_test = simulate(config, config.num_test_trials, jax.random.key(config.seed + 100))
  data = train.make_dataset(y)
  summary = {}
  results = {m: {"one_step": [], "loo": []} for m in config.models}
  for kind in config.models:
    for d in config.latent_dims:
      tcfg = train.default_config()
      tcfg.update(config.train.to_dict())
      tcfg.update(model=kind, latent_dim=d, observation="poisson",
                  link=config.flds_link if kind == "flds" else config.plds_link)
      if tcfg.num_steps != config.num_chunks * tcfg.steps_per_chunk:
        raise ValueError("train.num_steps must equal num_chunks * train.steps_per_chunk.")
      trainer = train.make_trainer(tcfg, data)
      state = run.train_loop(lambda t=trainer: t.init(jax.random.key(config.seed)),
                             trainer.chunk, config.num_chunks, name=f"{kind}_d{d}")
      gen, rec = state.params["gen"], state.params["rec"]
      k1, k2 = jax.random.split(jax.random.key(config.seed + 11))
      one_step = jax.jit(lambda g, r, yy, k, t=trainer: evaluation.one_step_ahead_loglik(
          t.model, g, t.recognition, r, yy, k, num_samples=config.eval_samples))(
              gen, rec, y_test, k1)
      loo = jax.jit(lambda g, r, yy, k, t=trainer: evaluation.leave_one_neuron_out_loglik(
          t.model, g, t.recognition, r, yy, k, num_samples=config.eval_samples))(
              gen, rec, y_test, k2)
      summary[f"{kind}_one_step_d{d}"] = float(one_step)
      summary[f"{kind}_loo_d{d}"] = float(loo)
      results[kind]["one_step"].append(float(one_step))
      results[kind]["loo"].append(float(loo))
      run.log_metrics(d, {f"{kind}_one_step": float(one_step), f"{kind}_loo": float(loo)})
  dims = list(config.latent_dims)
  # Smallest PLDS dimension whose held-out-neuron log-likelihood reaches fLDS's at the true dim.
  true_d = config.true_latent_dim
  if "flds" in results and "plds" in results and true_d in dims:
    target = results["flds"]["loo"][dims.index(true_d)]
    match = [d for d, v in zip(dims, results["plds"]["loo"]) if v >= target]
    summary[f"plds_dim_matching_flds_d{true_d}_loo"] = match[0] if match else f">{dims[-1]}"

  fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
  for ax, metric, title in ((axes[0], "one_step", "one-step-ahead log-lik per bin"),
                            (axes[1], "loo", "leave-one-neuron-out log-lik per neuron-bin")):
    for kind in config.models:
      ax.plot(dims, results[kind][metric], "o-", label=kind.upper())
    ax.axvline(true_d, color="k", ls=":", lw=0.8)
    ax.set(xlabel="latent dimension", title=title)
    ax.legend()
  fig.tight_layout()
  run.save_figure("flds_vs_plds", fig)
  return summary


if __name__ == "__main__":
  app.run(experiment)
