"""Sigmoid belief nets (discrete VAEs) with every gradient estimator of the library.

Linear SBNs as in NVIL (Mnih & Gregor 2014, Sec. 5) and REBAR (Tucker et al. 2017, Sec. 6):
encoders q(h1|x) q(h2|h1) and decoders p(h2) p(h1|h2) p(x|h1) (one layer: p(h1) p(x|h1)), every
layer a factorised Bernoulli with logits `x @ w + b`. Training maximises the ELBO
L(x) = E_q[log p(x, h) - log q(h|x)] (Mnih & Gregor 2014, Eq. (1)); its negative is emitted as
the costs of a `stochastic_graphs` model, so the score-function estimators get per-layer
causality from the library. The estimators (`ESTIMATORS`):

* `reinforce_ma`: score function with a moving-average baseline per layer.
* `nvil`: NVIL's centred learning signal, a running mean plus a learned linear b(x) (b(h1) for
  the second layer) (Mnih & Gregor 2014, Sec. 3.3).
* `loo`, `vimco`: K samples per example; LOO baselines on the K-sample mean of the ELBO (Kool et
  al. 2019), VIMCO on the K-sample bound log (1/K) sum_k w_k (Mnih & Rezende 2016, Sec. 2).
* `gumbel_st`: straight-through Gumbel-softmax on both layers (biased; Jang et al. 2017).
* `rebar`, `disarm`: REBAR (Tucker et al. 2017, Eq. (7)) with eta = 1 and DisARM (Dong et al.
  2020), composed layer by layer through their `f(b) -> surrogate` form.

Parameters are a dict: `enc1`, `dec1`, `prior`, `base1` (and `enc2`, `dec2`, `base2` for two
layers), each linear layer `{"w": (in, out), "b": (out,)}`. `make_trainer` gives the jittable
`init` / `chunk` pair that `launch.stochastic_graphs.sbn` runs in its resumable loop.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import distrax
import jax
import jax.numpy as jnp
import optax

import stochastic_graphs as sg

ESTIMATORS = ("reinforce_ma", "nvil", "loo", "vimco", "gumbel_st", "rebar", "disarm")


def _check(layers: int, estimator: str | None = None) -> None:
  if layers not in (1, 2):
    raise ValueError(f"layers must be 1 or 2 stochastic layers; got {layers!r}.")
  if estimator is not None and estimator not in ESTIMATORS:
    raise ValueError(f"unknown estimator {estimator!r}; expected one of {', '.join(ESTIMATORS)}.")


def init_params(key: jax.Array, layers: int, hidden: int, dim: int, train_mean: jax.Array
                ) -> dict[str, Any]:
  """Small random weights; the decoder's bias starts at the logit of the pixel means `(dim,)`."""
  _check(layers)
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


def neg_elbo_terms(params, x, h1, h2=None) -> dict[str, jax.Array]:
  """Costs of one example `x (dim,)` at latents `h1` (and `h2`): the log q terms and the -log p
  terms, whose sum is log q(h|x) - log p(x, h), the single-sample -ELBO."""
  terms = {"log_q1": _bern_lp(_lin(params["enc1"], x), h1),
           "nll_x": -_bern_lp(_lin(params["dec1"], h1), x)}
  if h2 is None:
    terms["prior"] = -_bern_lp(params["prior"], h1)
  else:
    terms["log_q2"] = _bern_lp(_lin(params["enc2"], h1), h2)
    terms["p_h1"] = -_bern_lp(_lin(params["dec2"], h2), h1)
    terms["prior"] = -_bern_lp(params["prior"], h2)
  return terms


def make_model(layers: int, learned_baseline: bool) -> Callable:
  """The stochastic-graph model `model(params, x, key, centre=None)` of one example: samples
  h1 (and h2) from the encoders and emits `neg_elbo_terms` as costs. With `learned_baseline`
  (NVIL), each layer's baseline is `centre[node]` plus a linear function of its input."""
  _check(layers)

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


def make_loss(layers: int, estimator: str, *, num_samples: int = 4, temperature: float = 0.5
              ) -> Callable:
  """`loss(params, batch, key, ma_value) -> (surrogate, (mean -ELBO sample, baseline returns))`.

  `batch` is `(B, dim)`; `ma_value` holds the moving-average baseline per node (`{"h1": ...}`,
  read by `reinforce_ma` and as NVIL's centre). The gradient of `surrogate` is the estimator's
  estimate of the gradient of the mean -ELBO (for `vimco`, of the K-sample bound's negative;
  `gumbel_st` is biased); the returns feed the moving average (zeros where unused).
  """
  _check(layers, estimator)
  nodes = ["h1"] + (["h2"] if layers == 2 else [])
  tau = temperature

  def per_example(fn):
    def loss(params, batch, key, ma_value):
      keys = jax.random.split(key, batch.shape[0])
      s, cost, returns, extra = jax.vmap(lambda x, k: fn(params, x, k, ma_value))(batch, keys)
      return jnp.mean(s) + jnp.mean(extra), (jnp.mean(cost), returns)
    return loss

  if estimator in ("reinforce_ma", "nvil", "gumbel_st"):
    est = {n: sg.GumbelSoftmax(tau, True) for n in nodes} if estimator == "gumbel_st" else None
    surr = sg.make_surrogate(make_model(layers, estimator == "nvil"), estimators=est)

    def fn(params, x, k, ma_value):
      if estimator == "nvil":
        s, info = surr(params, x, k, centre=jax.lax.stop_gradient(ma_value))
      else:
        base = ma_value if estimator == "reinforce_ma" else None
        s, info = surr(params, x, k, baselines=base)
      return s, info.cost, {n: info.returns[n] for n in nodes}, info.baseline_loss
    return per_example(fn)
  if estimator in ("loo", "vimco"):
    surr = sg.make_multi_sample_surrogate(
        make_model(layers, False), num_samples,
        objective="mean" if estimator == "loo" else "logmeanexp")

    def fn(params, x, k, ma_value):
      s, info = surr(params, x, k)
      return s, jnp.mean(info.costs), {n: jnp.zeros(()) for n in nodes}, jnp.zeros(())
    return per_example(fn)

  def layer(f, logits, key):  # rebar or disarm, one Bernoulli layer.
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


def make_neg_elbo(layers: int) -> Callable:
  """`neg_elbo(params, data (N, dim), key)`: the single-sample -ELBO averaged over a data set
  (the same evaluation for every estimator)."""
  _check(layers)

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


class Trainer(NamedTuple):
  """`init(key, train_mean) -> state`; `chunk(state, data) -> (state, metrics)` runs
  `steps_per_chunk` Adam steps (metrics per step: `neg_elbo_sample`, and, measured once at the end
  of the chunk, `encoder_grad_variance` and `train_neg_elbo`); `neg_elbo` as `make_neg_elbo`."""
  init: Callable
  chunk: Callable
  neg_elbo: Callable


def make_trainer(layers: int, estimator: str, var_batch: jax.Array, *, hidden: int = 32,
                 learning_rate: float = 3e-3, batch_size: int = 50, ma_decay: float = 0.9,
                 num_samples: int = 4, temperature: float = 0.5, var_samples: int = 64,
                 steps_per_chunk: int = 500) -> Trainer:
  """Adam on one estimator's surrogate, with minibatches of `batch_size` drawn with replacement.

  The encoder-gradient variance (trace of the covariance over `var_samples` independent
  estimates of the encoder gradient on the fixed `var_batch (E, dim)`) is measured after each
  chunk, with the train -ELBO over the whole `data` passed to `chunk`.
  """
  _check(layers, estimator)
  loss = make_loss(layers, estimator, num_samples=num_samples, temperature=temperature)
  neg_elbo = make_neg_elbo(layers)
  opt = optax.adam(learning_rate)
  ma = sg.moving_average_baseline(ma_decay)
  nodes = ["h1"] + (["h2"] if layers == 2 else [])
  enc_keys = ["enc1"] + (["enc2"] if layers == 2 else [])
  var_batch = jnp.asarray(var_batch)

  def init(key, train_mean):
    train_mean = jnp.asarray(train_mean)
    params = init_params(key, layers, hidden, train_mean.shape[0], train_mean)
    return {"params": params, "opt": opt.init(params),
            "ma": ma.init({n: jnp.zeros(()) for n in nodes}), "key": jax.random.fold_in(key, 1)}

  def one_step(state, data):
    key, kb, kl = jax.random.split(state["key"], 3)
    idx = jax.random.randint(kb, (batch_size,), 0, data.shape[0])
    grads, (cost, returns) = jax.grad(loss, has_aux=True)(state["params"], data[idx], kl,
                                                         ma.value(state["ma"]))
    updates, opt_state = opt.update(grads, state["opt"], state["params"])
    params = optax.apply_updates(state["params"], updates)
    return ({"params": params, "opt": opt_state, "ma": ma.update(state["ma"], returns),
             "key": key}, {"neg_elbo_sample": cost})

  def encoder_variance(state, key):
    def enc_grad(k):
      g = jax.grad(lambda p: loss(p, var_batch, k, ma.value(state["ma"]))[0])(state["params"])
      return {n: g[n] for n in enc_keys}
    grads = jax.vmap(enc_grad)(jax.random.split(key, var_samples))
    return sg.gradient_statistics(grads).variance

  def chunk(state, data):
    state, metrics = jax.lax.scan(lambda s, _: one_step(s, data), state, None,
                                  length=steps_per_chunk)
    kv, ke = jax.random.split(jax.random.fold_in(state["key"], 7))
    metrics["encoder_grad_variance"] = jnp.full(steps_per_chunk, encoder_variance(state, kv))
    metrics["train_neg_elbo"] = jnp.full(steps_per_chunk, neg_elbo(state["params"], data, ke))
    return state, metrics

  return Trainer(init=init, chunk=chunk, neg_elbo=neg_elbo)
