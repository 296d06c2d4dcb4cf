"""Bernoulli toy: which gradient estimators find the right side of p = 1/2.

The loss is E[(b - t)^2] with b ~ Bernoulli(sigmoid(theta)) and t in {0.45, 0.499}. Its gradient
(1 - 2t) p (1 - p) is tiny next to the noise of the score function, so noisy estimators drift
(Tucker et al. 2017, Sec. 6.1; Grathwohl et al. 2018, Sec. 6.1). For each estimator we measure
the gradient variance at theta = 0 and train theta with Adam, and we report whether p ends below
1/2. REBAR tunes its scale eta and temperature, and RELAX its temperature and a small network
r_rho, online by minimising the estimator's variance, as in both papers.
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


def init_control(key, hidden, temperature):
  """Parameters tuned by REBAR and RELAX (unused by the other estimators).

  `eta` and `log_temp` are REBAR's scale and the relaxation's log-temperature (both tuned, Tucker
  et al. 2017 Sec. 3.3); `w1, b1, w2, b2` are RELAX's network r_rho (one tanh layer of `hidden`
  units), Grathwohl et al. 2018 Sec. 3.3.
  """
  k1, k2, k3 = jax.random.split(key, 3)
  return {"eta": jnp.ones(()), "log_temp": jnp.log(jnp.asarray(temperature, jnp.float32)),
          "w1": jax.random.normal(k1, (hidden,)), "b1": jax.random.normal(k2, (hidden,)),
          "w2": jax.random.normal(k3, (hidden,)) / jnp.sqrt(hidden), "b2": jnp.zeros(())}


def make_estimators(config):
  """name -> grad_fn(theta, phi, ma_value, t, key) -> (grad_theta, grad_phi, sampled cost).

  grad_phi is the gradient of the squared single-sample estimate w.r.t. the control parameters
  (zero for estimators without any): since the estimator is unbiased for every phi, this is an
  unbiased gradient of its variance (Tucker et al. 2017 Sec. 3.3; Grathwohl et al. 2018 Eq. (5)).
  """
  tau = config.temperature

  def model(theta, t, key):
    b = sg.sample("b", distrax.Bernoulli(logits=theta, dtype=theta.dtype), key)
    sg.cost("c", (b - t) ** 2)

  plain = sg.make_surrogate(model)
  gumbel = sg.make_surrogate(model, estimators={"b": sg.GumbelSoftmax(tau, True)})
  loo = sg.make_multi_sample_surrogate(model, 2, key_argnum=2)

  def from_surrogate(fn):
    def grad_fn(theta, phi, ma, t, key):
      (s, info), g = jax.value_and_grad(lambda th: fn(th, t, key), has_aux=True)(theta)
      return g, jax.tree.map(jnp.zeros_like, phi), info.cost
    return grad_fn

  def reinforce_ma(theta, phi, ma, t, key):
    (s, info), g = jax.value_and_grad(
        lambda th: plain(th, t, key, baselines={"b": ma}), has_aux=True)(theta)
    return g, jax.tree.map(jnp.zeros_like, phi), info.cost

  def loo_fn(theta, phi, ma, t, key):
    (s, info), g = jax.value_and_grad(lambda th: loo(th, t, key), has_aux=True)(theta)
    return g, jax.tree.map(jnp.zeros_like, phi), jnp.mean(info.costs)

  def function_style(kind):
    tuned = {"rebar": ("eta", "log_temp"),
             "relax": ("log_temp", "w1", "b1", "w2", "b2")}.get(kind, ())

    def grad_fn(theta, phi, ma, t, key):
      f = lambda b: (b - t) ** 2  # noqa: E731

      def surrogate(th, ph):
        if kind == "arm":
          return sg.arm_surrogate(f, th, key)
        if kind == "disarm":
          return sg.disarm_surrogate(f, th, key)
        temp = jnp.exp(ph["log_temp"])
        if kind == "rebar":  # c(z) = eta f(sigmoid(z / lambda)), Tucker et al. 2017 Eq. (7).
          return sg.relax_surrogate(f, th, key, temperature=temp, eta=ph["eta"])

        def r(z):  # RELAX: c(z) = f(sigmoid(z / lambda)) + r_rho(z), Grathwohl et al. Sec. 6.1.
          x = 2.0 * jax.nn.sigmoid(z / temp) - 1.0
          return jnp.dot(ph["w2"], jnp.tanh(ph["w1"] * x + ph["b1"])) + ph["b2"]
        return sg.relax_surrogate(f, th, key, temperature=temp, eta=1.0, control=r)

      g = jax.grad(surrogate)(theta, phi)
      if tuned:
        g_phi = jax.grad(lambda ph: jax.grad(surrogate)(theta, ph) ** 2)(phi)
        g_phi = {k: (v if k in tuned else jnp.zeros_like(v)) for k, v in g_phi.items()}
      else:
        g_phi = jax.tree.map(jnp.zeros_like, phi)
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


def _stack_estimators(estimators, theta, phi, ma_val, targets, keys):
  """Runs every estimator on its own row of theta/phi/ma/keys, vmapped over the targets."""
  g_th, g_ph, costs = [], [], []
  for i, fn in enumerate(estimators.values()):
    g, gp, c = jax.vmap(fn)(theta[i], jax.tree.map(lambda a, i=i: a[i], phi), ma_val[i],
                            targets, keys[i])
    g_th.append(g)
    g_ph.append(gp)
    costs.append(c)
  return jnp.stack(g_th), jax.tree.map(lambda *a: jnp.stack(a), *g_ph), jnp.stack(costs)


def experiment(config, run: app.Run) -> dict:
  estimators = make_estimators(config)
  names = list(estimators)
  n_e, n_t = len(names), len(config.targets)
  targets = jnp.asarray(config.targets, jnp.float32)
  opt = optax.adam(config.learning_rate)
  opt_phi = optax.adam(config.control_learning_rate)
  ma = sg.moving_average_baseline(config.ma_decay)
  phi0 = jax.tree.map(
      lambda a: jnp.broadcast_to(a, (n_e, n_t) + a.shape),
      init_control(jax.random.PRNGKey(config.seed + 2), config.control_hidden,
                   config.temperature))
  zeros = jnp.zeros((n_e, n_t))

  # Gradient variance at theta = 0 (p = 1/2), the hardest point. REBAR's and RELAX's control
  # parameters are first adapted there (the variance objective), as they would be in training;
  # the moving-average baseline is given its converged value.
  converged = jnp.broadcast_to(0.5 * (targets ** 2 + (1.0 - targets) ** 2), (n_e, n_t))

  def adapt(phi, key):
    def step(carry, k):
      phi, o = carry
      _, g_phi, _ = _stack_estimators(estimators, zeros, phi, converged, targets,
                                      jax.random.split(k, (n_e, n_t)))
      u, o = opt_phi.update(g_phi, o)
      return (optax.apply_updates(phi, u), o), None
    keys = jax.random.split(key, config.variance_adapt_steps)
    return jax.lax.scan(step, (phi, opt_phi.init(phi)), keys)[0][0]

  def per_sample(phi, key):
    return _stack_estimators(estimators, zeros, phi, converged, targets,
                             jax.random.split(key, (n_e, n_t)))[0]

  vkey = jax.random.PRNGKey(config.seed + 1)
  phi_adapted = jax.jit(adapt)(phi0, jax.random.fold_in(vkey, 1))
  keys = jax.random.split(vkey, config.variance_samples)
  g = np.asarray(jax.jit(jax.vmap(per_sample, (None, 0)))(phi_adapted, keys))  # (N, E, T)
  summary = {}
  for j, t in enumerate(config.targets):
    summary[f"exact_grad_t{t}"] = 0.25 * (1.0 - 2.0 * t)
    for i, name in enumerate(names):
      summary[f"var_t{t}/{name}"] = float(np.var(g[:, i, j], ddof=1))
      summary[f"mean_t{t}/{name}"] = float(np.mean(g[:, i, j]))
      summary[f"stderr_t{t}/{name}"] = float(np.std(g[:, i, j], ddof=1) / np.sqrt(len(g)))

  def init_fn():
    return {"theta": zeros, "phi": phi0, "opt": opt.init(zeros), "opt_phi": opt_phi.init(phi0),
            "ma": ma.init(zeros), "key": jax.random.PRNGKey(config.seed)}

  def one_step(state, _):
    key, sub = jax.random.split(state["key"])
    g_th, g_ph, costs = _stack_estimators(estimators, state["theta"], state["phi"],
                                          ma.value(state["ma"]), targets,
                                          jax.random.split(sub, (n_e, n_t)))
    u, opt_state = opt.update(g_th, state["opt"])
    u_phi, opt_phi_state = opt_phi.update(g_ph, state["opt_phi"])
    new = {"theta": optax.apply_updates(state["theta"], u),
           "phi": optax.apply_updates(state["phi"], u_phi), "opt": opt_state,
           "opt_phi": opt_phi_state, "ma": ma.update(state["ma"], costs), "key": key}
    return new, {"p": jax.nn.sigmoid(new["theta"]), "grad": g_th}

  def chunk_fn(state):
    return jax.lax.scan(one_step, state, None, length=config.steps_per_chunk)

  state = parallel.fetch(run.train_loop(init_fn, chunk_fn, config.num_chunks))
  history = run.history()
  p_hist = np.asarray(history["p"])  # (steps, estimators, targets)
  g_hist = np.asarray(history["grad"])
  window = min(config.variance_window, len(g_hist))
  n_win = len(g_hist) // window
  # Variance of the training gradients in consecutive windows (the estimator as trained).
  win_var = np.var(g_hist[:n_win * window].reshape(n_win, window, n_e, n_t), axis=1, ddof=1)
  theta = np.asarray(state["theta"])
  for j, t in enumerate(config.targets):
    correct = []
    for i, name in enumerate(names):
      summary[f"final_theta_t{t}/{name}"] = float(theta[i, j])
      summary[f"final_p_t{t}/{name}"] = float(1.0 / (1.0 + np.exp(-theta[i, j])))
      summary[f"train_log10_var_t{t}/{name}"] = float(np.mean(np.log10(win_var[:, i, j] +
                                                                        1e-30)))
      if theta[i, j] < 0:
        correct.append(name)
    summary[f"correct_side_t{t}"] = ",".join(correct)
    for name in set(names) & {"rebar", "relax"}:
      i = names.index(name)
      summary[f"final_temperature_t{t}/{name}"] = float(np.exp(state["phi"]["log_temp"][i, j]))

  fig, axes = plt.subplots(1, n_t + 2, figsize=(5 * (n_t + 2), 4))
  for j, t in enumerate(config.targets):
    for i, name in enumerate(names):
      axes[j].plot(p_hist[:, i, j], label=name)
    axes[j].axhline(0.5, color="k", lw=0.5)
    axes[j].set(title=f"t = {t}", xlabel="step", ylabel="p = sigmoid(theta)", ylim=(0, 1))
  axes[0].legend(fontsize=7)
  steps = (np.arange(n_win) + 1) * window
  for i, name in enumerate(names):
    axes[n_t].semilogy(steps, np.maximum(win_var[:, i, -1], 1e-14), label=name)
  axes[n_t].set(title=f"gradient variance in training, t = {config.targets[-1]}", xlabel="step",
                ylabel="variance (floored at 1e-14)")
  width = 0.8 / n_t
  for j, t in enumerate(config.targets):
    axes[-1].bar(np.arange(n_e) + j * width,
                 [np.log10(max(summary[f"var_t{t}/{n}"], 1e-14)) for n in names], width,
                 label=f"t = {t}")
  axes[-1].set_xticks(np.arange(n_e) + width / 2, names, rotation=45, fontsize=7)
  axes[-1].set(title="log10 gradient variance at p = 1/2 (floored at -14)")
  axes[-1].legend()
  fig.tight_layout()
  run.save_figure("bernoulli", fig)
  return summary


if __name__ == "__main__":
  app.run(experiment)
