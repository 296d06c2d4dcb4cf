"""Bernoulli toy: which gradient estimators find the right side of p = 1/2.

The loss is E[(b - t)^2] with b ~ Bernoulli(sigmoid(theta)) and t in {0.45, 0.499}. Its gradient
(1 - 2t) p (1 - p) is tiny next to the noise of the score function, so noisy estimators drift
(Tucker et al. 2017, Sec. 6.1). For each estimator we measure the gradient variance at
theta = 0 and train theta with Adam, and we report whether p ends below 1/2.
"""
import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import distrax  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

import stochastic_graphs as sg  # noqa: E402
from launch import app, parallel  # noqa: E402


def make_estimators(config):
  """name -> grad_fn(theta, phi, ma_value, t, key) -> (grad_theta, grad_phi, sampled cost)."""
  tau = config.temperature

  def model(theta, t, key):
    b = sg.sample("b", distrax.Bernoulli(logits=theta, dtype=theta.dtype), key)
    sg.cost("c", (b - t) ** 2)

  plain = sg.make_surrogate(model)
  gumbel = sg.make_surrogate(model, estimators={"b": sg.GumbelSoftmax(tau, True)})
  loo = sg.make_multi_sample_surrogate(model, 2, key_argnum=2)

  def control(phi, z):
    s = jax.nn.sigmoid(z)
    return phi[0] + phi[1] * s + phi[2] * s ** 2

  def from_surrogate(fn):
    def grad_fn(theta, phi, ma, t, key):
      (s, info), g = jax.value_and_grad(lambda th: fn(th, t, key), has_aux=True)(theta)
      return g, jnp.zeros_like(phi), info.cost
    return grad_fn

  def reinforce_ma(theta, phi, ma, t, key):
    (s, info), g = jax.value_and_grad(
        lambda th: plain(th, t, key, baselines={"b": ma}), has_aux=True)(theta)
    return g, jnp.zeros_like(phi), info.cost

  def loo_fn(theta, phi, ma, t, key):
    (s, info), g = jax.value_and_grad(lambda th: loo(th, t, key), has_aux=True)(theta)
    return g, jnp.zeros_like(phi), jnp.mean(info.costs)

  def function_style(kind):
    def grad_fn(theta, phi, ma, t, key):
      f = lambda b: (b - t) ** 2  # noqa: E731
      def surrogate(th, ph):
        if kind == "arm":
          return sg.arm_surrogate(f, th, key)
        if kind == "disarm":
          return sg.disarm_surrogate(f, th, key)
        ctrl = (lambda z: control(ph, z)) if kind == "relax" else None
        return sg.relax_surrogate(f, th, key, temperature=tau, eta=1.0, control=ctrl)
      g = jax.grad(surrogate)(theta, phi)
      if kind == "relax":  # RELAX: the control minimises the estimator's second moment.
        g_phi = jax.grad(lambda ph: jax.grad(surrogate)(theta, ph) ** 2)(phi)
      else:
        g_phi = jnp.zeros_like(phi)
      return g, g_phi, surrogate(theta, phi)
    return grad_fn

  table = {"reinforce": from_surrogate(plain), "reinforce_ma": reinforce_ma, "loo": loo_fn,
           "gumbel_st": from_surrogate(gumbel), "rebar": function_style("rebar"),
           "relax": function_style("relax"), "arm": function_style("arm"),
           "disarm": function_style("disarm")}
  unknown = set(config.estimators) - set(table)
  if unknown:
    raise ValueError(f"config.estimators has unknown names {sorted(unknown)}; known: "
                     f"{sorted(table)}.")
  return {n: table[n] for n in config.estimators}


def experiment(config, run: app.Run) -> dict:
  estimators = make_estimators(config)
  names = list(estimators)
  targets = jnp.asarray(config.targets, jnp.float32)
  opt = optax.adam(config.learning_rate)
  ma = sg.moving_average_baseline(config.ma_decay)

  # Gradient variance at theta = 0 (p = 1/2), the hardest point.
  vkey = jax.random.PRNGKey(config.seed + 1)
  keys = jax.random.split(vkey, config.variance_samples)
  summary = {}
  tvec = jnp.asarray(config.targets, jnp.float32)
  converged = 0.5 * (tvec ** 2 + (1.0 - tvec) ** 2)  # A converged moving average at p = 1/2.
  for name, fn in estimators.items():
    per_t = jax.vmap(lambda t, b, k, fn=fn: fn(jnp.zeros(()), jnp.zeros(3), b, t, k)[0],
                     (0, 0, None))
    g = np.asarray(jax.jit(jax.vmap(per_t, (None, None, 0)))(tvec, converged, keys))
    for j, t in enumerate(config.targets):
      summary[f"var_t{t}/{name}"] = float(np.var(g[:, j], ddof=1))
      summary[f"mean_t{t}/{name}"] = float(np.mean(g[:, j]))
      summary[f"stderr_t{t}/{name}"] = float(np.std(g[:, j], ddof=1) / np.sqrt(len(g)))
  for t in config.targets:
    summary[f"exact_grad_t{t}"] = 0.25 * (1.0 - 2.0 * t)

  def init_fn():
    theta = jnp.zeros((len(names), len(config.targets)))
    phi = jnp.zeros((len(names), len(config.targets), 3))
    return {"theta": theta, "phi": phi, "opt": opt.init((theta, phi)),
            "ma": ma.init(jnp.zeros((len(names), len(config.targets)))),
            "key": jax.random.PRNGKey(config.seed)}

  def one_step(state, _):
    key, sub = jax.random.split(state["key"])
    ks = jax.random.split(sub, (len(names), len(config.targets)))
    ma_val = ma.value(state["ma"])
    g_th, g_ph, costs = [], [], []
    for i, name in enumerate(names):
      g, gp, c = jax.vmap(estimators[name])(state["theta"][i], state["phi"][i], ma_val[i],
                                            targets, ks[i])
      g_th.append(g)
      g_ph.append(gp)
      costs.append(c)
    grads = (jnp.stack(g_th), jnp.stack(g_ph))
    updates, opt_state = opt.update(grads, state["opt"])
    theta, phi = optax.apply_updates((state["theta"], state["phi"]), updates)
    new = {"theta": theta, "phi": phi, "opt": opt_state, "ma": ma.update(state["ma"],
                                                                         jnp.stack(costs)),
           "key": key}
    return new, {"p": jax.nn.sigmoid(theta)}

  def chunk_fn(state):
    return jax.lax.scan(one_step, state, None, length=config.steps_per_chunk)

  state = parallel.fetch(run.train_loop(init_fn, chunk_fn, config.num_chunks))
  history = run.history()
  p_hist = np.asarray(history["p"])  # (steps, estimators, targets)
  final_p = np.asarray(jax.nn.sigmoid(state["theta"]))
  for j, t in enumerate(config.targets):
    correct = []
    for i, name in enumerate(names):
      summary[f"final_p_t{t}/{name}"] = float(final_p[i, j])
      if final_p[i, j] < 0.5:
        correct.append(name)
    summary[f"correct_side_t{t}"] = ",".join(correct)

  fig, axes = plt.subplots(1, len(config.targets) + 1, figsize=(5 * (len(config.targets) + 1), 4))
  for j, t in enumerate(config.targets):
    for i, name in enumerate(names):
      axes[j].plot(p_hist[:, i, j], label=name)
    axes[j].axhline(0.5, color="k", lw=0.5)
    axes[j].set(title=f"t = {t}", xlabel="step", ylabel="p = sigmoid(theta)", ylim=(0, 1))
  axes[0].legend(fontsize=7)
  width = 0.8 / len(config.targets)
  for j, t in enumerate(config.targets):
    axes[-1].bar(np.arange(len(names)) + j * width,
                 [np.log10(summary[f"var_t{t}/{n}"] + 1e-30) for n in names], width,
                 label=f"t = {t}")
  axes[-1].set_xticks(np.arange(len(names)) + width / 2, names, rotation=45, fontsize=7)
  axes[-1].set(title="log10 gradient variance at p = 1/2")
  axes[-1].legend()
  fig.tight_layout()
  run.save_figure("bernoulli", fig)
  return summary


if __name__ == "__main__":
  app.run(experiment)
