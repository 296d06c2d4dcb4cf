"""Sigmoid belief nets on binarised scikit-learn digits, trained with each gradient estimator.

Linear SBNs as in NVIL (Mnih & Gregor 2014) and REBAR (Tucker et al. 2017): q(h1|x) q(h2|h1)
encoders and p(h2) p(h1|h2) p(x|h1) decoders, all factorised Bernoulli layers. The negative
ELBO is emitted as costs of a `stochastic_graphs` model, so the score-function estimators get
per-layer causality from the library. REBAR and DisARM compose layer by layer through their
`f(b) -> surrogate` form. We report the training/test ELBO and the encoder gradient variance
(trace of the covariance over independent estimates on a fixed minibatch) over training.
"""
import distrax
import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

import stochastic_graphs as sg  # noqa: E402
from launch import app, parallel  # noqa: E402


def load_data(config):
  x = (load_digits().data > 7).astype(np.float32)
  perm = np.random.RandomState(config.seed).permutation(len(x))
  n_test = int(len(x) * config.test_fraction)
  return x[perm[n_test:]], x[perm[:n_test]]


def init_params(key, layers, hidden, dim, train_mean):
  ks = jax.random.split(key, 8)
  dense = lambda k, i, o: 0.01 * jax.random.normal(k, (i, o))  # noqa: E731
  p = {"enc1": {"w": dense(ks[0], dim, hidden), "b": jnp.zeros(hidden)},
       "dec1": {"w": dense(ks[1], hidden, dim),
                "b": jnp.log(train_mean + 1e-3) - jnp.log1p(-train_mean + 1e-3)},
       "prior": jnp.zeros(hidden),
       "base1": {"w": jnp.zeros((dim, 1)), "b": jnp.zeros(1)}}
  if layers == 2:
    p["enc2"] = {"w": dense(ks[2], hidden, hidden), "b": jnp.zeros(hidden)}
    p["dec2"] = {"w": dense(ks[3], hidden, hidden), "b": jnp.zeros(hidden)}
    p["base2"] = {"w": jnp.zeros((hidden, 1)), "b": jnp.zeros(1)}
  return p


def _lin(p, x):
  return x @ p["w"] + p["b"]


def _bern_lp(logits, b):
  return jnp.sum(b * jax.nn.log_sigmoid(logits) + (1 - b) * jax.nn.log_sigmoid(-logits))


def neg_elbo_terms(params, x, h1, h2=None):
  """Costs of one example: log q terms and -log p terms (their sum is -ELBO)."""
  terms = {"log_q1": _bern_lp(_lin(params["enc1"], x), h1),
           "nll_x": -_bern_lp(_lin(params["dec1"], h1), x)}
  if h2 is None:
    terms["prior"] = -_bern_lp(params["prior"], h1)
  else:
    terms["log_q2"] = _bern_lp(_lin(params["enc2"], h1), h2)
    terms["p_h1"] = -_bern_lp(_lin(params["dec2"], h2), h1)
    terms["prior"] = -_bern_lp(params["prior"], h2)
  return terms


def make_graph(layers, learned_baseline):
  def model(params, x, key, centre=None):
    k1, k2 = jax.random.split(key)
    h1 = sg.sample("h1", distrax.Bernoulli(logits=_lin(params["enc1"], x), dtype=x.dtype), k1)
    if learned_baseline:
      # NVIL (Mnih & Gregor 2014, Sec. 3.3): a running mean centres the signal and an
      # input-dependent network b(x) (b(h1) for h2) learns the residual.
      sg.baseline("h1", centre["h1"] + _lin(params["base1"], x)[0])
    h2 = None
    if layers == 2:
      h2 = sg.sample("h2", distrax.Bernoulli(logits=_lin(params["enc2"], h1), dtype=x.dtype), k2)
      if learned_baseline:
        sg.baseline("h2", centre["h2"] + _lin(params["base2"], h1)[0])
    for name, value in neg_elbo_terms(params, x, h1, h2).items():
      sg.cost(name, value)
  return model


def make_loss(config, layers, estimator):
  """loss(params, batch, key, ma_value) -> (surrogate, (mean -ELBO sample, baseline returns))."""
  nodes = ["h1"] + (["h2"] if layers == 2 else [])
  tau = config.temperature

  def per_example(fn):
    def loss(params, batch, key, ma_value):
      keys = jax.random.split(key, batch.shape[0])
      s, cost, returns, extra = jax.vmap(lambda x, k: fn(params, x, k, ma_value))(batch, keys)
      return jnp.mean(s) + jnp.mean(extra), (jnp.mean(cost), returns)
    return loss

  if estimator in ("reinforce_ma", "nvil", "gumbel_st"):
    est = {n: sg.GumbelSoftmax(tau, True) for n in nodes} if estimator == "gumbel_st" else None
    surrogate = sg.make_surrogate(make_graph(layers, estimator == "nvil"), estimators=est)

    def fn(params, x, k, ma_value):
      if estimator == "nvil":
        s, info = surrogate(params, x, k, centre=jax.lax.stop_gradient(ma_value))
      else:
        base = ma_value if estimator == "reinforce_ma" else None
        s, info = surrogate(params, x, k, baselines=base)
      return s, info.cost, {n: info.returns[n] for n in nodes}, info.baseline_loss
    return per_example(fn)
  if estimator in ("loo", "vimco"):
    surrogate = sg.make_multi_sample_surrogate(
        make_graph(layers, False), config.num_samples,
        objective="mean" if estimator == "loo" else "logmeanexp")

    def fn(params, x, k, ma_value):
      s, info = surrogate(params, x, k)
      return s, jnp.mean(info.costs), {n: jnp.zeros(()) for n in nodes}, jnp.zeros(())
    return per_example(fn)
  if estimator in ("rebar", "disarm"):
    def layer(f, logits, key):
      if estimator == "disarm":
        return sg.disarm_surrogate(f, logits, key)
      return sg.relax_surrogate(f, logits, key, temperature=tau, eta=1.0)

    def fn(params, x, k, ma_value):
      k1, k2 = jax.random.split(k)

      def f1(h1):
        if layers == 1:
          return sum(neg_elbo_terms(params, x, h1).values())
        return layer(lambda h2: sum(neg_elbo_terms(params, x, h1, h2).values()),
                     _lin(params["enc2"], h1), k2)
      s = layer(f1, _lin(params["enc1"], x), k1)
      return s, s, {n: jnp.zeros(()) for n in nodes}, jnp.zeros(())
    return per_example(fn)
  raise ValueError(f"unknown estimator {estimator!r}; expected one of "
                   "reinforce_ma, nvil, loo, vimco, gumbel_st, rebar, disarm.")


def make_eval(layers):
  """Single-sample -ELBO averaged over a data set (the same for every estimator)."""
  def neg_elbo(params, data, key):
    def one(x, k):
      k1, k2 = jax.random.split(k)
      h1 = jax.random.bernoulli(k1, jax.nn.sigmoid(_lin(params["enc1"], x))).astype(x.dtype)
      h2 = None
      if layers == 2:
        h2 = jax.random.bernoulli(k2, jax.nn.sigmoid(_lin(params["enc2"], h1))).astype(x.dtype)
      return sum(neg_elbo_terms(params, x, h1, h2).values())
    return jnp.mean(jax.vmap(one)(data, jax.random.split(key, data.shape[0])))
  return neg_elbo


def run_one(config, run, layers, estimator, train, test):
  loss = make_loss(config, layers, estimator)
  neg_elbo = make_eval(layers)
  opt = optax.adam(config.learning_rate)
  ma = sg.moving_average_baseline(config.ma_decay)
  nodes = ["h1"] + (["h2"] if layers == 2 else [])
  var_batch = jnp.asarray(train[:config.var_examples])
  enc_keys = [k for k in ("enc1", "enc2") if layers == 2 or k == "enc1"]

  def init_fn():
    key = jax.random.PRNGKey(config.seed)
    params = init_params(key, layers, config.hidden, train.shape[1], jnp.asarray(train.mean(0)))
    return {"params": params, "opt": opt.init(params),
            "ma": ma.init({n: jnp.zeros(()) for n in nodes}), "key": jax.random.fold_in(key, 1)}

  def one_step(state, data):
    key, kb, kl = jax.random.split(state["key"], 3)
    idx = jax.random.randint(kb, (config.batch_size,), 0, data.shape[0])
    batch = data[idx]
    grads, (cost, returns) = jax.grad(loss, has_aux=True)(state["params"], batch, kl,
                                                         ma.value(state["ma"]))
    updates, opt_state = opt.update(grads, state["opt"], state["params"])
    params = optax.apply_updates(state["params"], updates)
    return ({"params": params, "opt": opt_state, "ma": ma.update(state["ma"], returns),
             "key": key}, {"neg_elbo_sample": cost})

  def encoder_variance(state, key):
    def enc_grad(k):
      g = jax.grad(lambda p: loss(p, var_batch, k, ma.value(state["ma"]))[0])(state["params"])
      return {n: g[n] for n in enc_keys}
    stats = sg.gradient_statistics(jax.vmap(enc_grad)(jax.random.split(key,
                                                                       config.var_samples)))
    return stats.variance

  def chunk_fn(state, data):
    state, metrics = jax.lax.scan(lambda s, _: one_step(s, data), state, None,
                                  length=config.steps_per_chunk)
    kv, ke = jax.random.split(jax.random.fold_in(state["key"], 7))
    steps = config.steps_per_chunk
    metrics["encoder_grad_variance"] = jnp.full(steps, encoder_variance(state, kv))
    metrics["train_neg_elbo"] = jnp.full(steps, neg_elbo(state["params"], data, ke))
    return state, metrics

  state = parallel.fetch(run.train_loop(init_fn, chunk_fn, config.num_chunks,
                                        name=f"l{layers}_{estimator}", data=jnp.asarray(train)))
  hist = run.history(f"l{layers}_{estimator}")
  test_elbo = -float(jax.jit(neg_elbo)(state["params"], jnp.asarray(test),
                                      jax.random.PRNGKey(99)))
  return hist, test_elbo


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
