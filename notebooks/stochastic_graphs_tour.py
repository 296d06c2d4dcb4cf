# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]

# %% [markdown]
# # stochastic_graphs: gradient estimators on the Bernoulli toy
#
# Weber, Heess, Buesing, Silver 2019, *Credit assignment techniques in stochastic computation
# graphs*; Schulman et al. 2015, Eq. (10); Yin & Zhou 2019 (ARM), Eq. (5); Dong et al. 2020
# (DisARM), Eq. (6); Jang et al. 2017 (straight-through Gumbel-softmax).
#
# The toy of Tucker et al. 2017 (Sec. 6.1): minimise $E[\sum_i (b_i - t)^2]$ with
# $b_i \sim \mathrm{Bernoulli}(\sigma(\theta_i))$ and $t = 0.45$. Its exact gradient is
# $\partial_{\theta_i} = (1 - 2t)\, p_i (1 - p_i)$, small next to the noise of the score function.
# A model is an ordinary JAX function that calls `sg.sample` and `sg.cost`;
# `sg.make_surrogate(model)` returns a surrogate whose gradient is the estimator (the
# score-function surrogate $\sum_c c + \sum_v \log p(v)\,\bot[R_v]$ of W19 Eq. (5) for discrete
# nodes). ARM and DisARM are function-style estimators for Bernoulli layers.

# %%
import distrax
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

import stochastic_graphs as sg

t = 0.45
theta = jnp.array([-1.0, 0.0, 1.0])
p = jax.nn.sigmoid(theta)
exact = (1 - 2 * t) * p * (1 - p)
f = lambda b: jnp.sum((b - t) ** 2)


def model(theta, key):
  b = sg.sample("b", distrax.Bernoulli(logits=theta, dtype=jnp.float32), key)
  sg.cost("c", f(b))


reinforce = sg.make_surrogate(model)
straight_through = sg.make_surrogate(model, estimators={"b": sg.StraightThrough(0.5)})
estimators = {
    "REINFORCE": lambda th, key: reinforce(th, key)[0],
    "straight-through (biased)": lambda th, key: straight_through(th, key)[0],
    "ARM": lambda th, key: sg.arm_surrogate(f, th, key),
    "DisARM": lambda th, key: sg.disarm_surrogate(f, th, key),
}

# %% [markdown]
# 20000 independent single-sample estimates of each, vmapped: their mean, standard error and
# total variance (trace of the covariance).

# %%
keys = jax.random.split(jax.random.key(0), 20000)
stats = {name: sg.gradient_statistics(jax.jit(sg.per_sample_gradients, static_argnums=0)(
    fn, theta, keys)) for name, fn in estimators.items()}
print(f"exact gradient {np.round(np.asarray(exact), 4)}")
for name, s in stats.items():
  z = np.abs(np.asarray(s.mean - exact)) / np.asarray(s.stderr)
  print(f"{name:>26}: mean {np.round(np.asarray(s.mean), 4)}  |mean - exact| / SE "
        f"{np.round(z, 1)}  variance {float(s.variance):.2e}")

# %%
fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 3.5))
ax0.plot(np.asarray(theta), np.asarray(exact), "ko", ms=9, mfc="none", label="exact")
for i, (name, s) in enumerate(stats.items()):
  ax0.errorbar(np.asarray(theta) + 0.06 * (i - 1.5), np.asarray(s.mean),
               yerr=2 * np.asarray(s.stderr), fmt=".", capsize=3, label=name)
ax0.set(xlabel="theta_i", ylabel="d loss / d theta_i", title="mean +- 2 SE of 20000 estimates")
ax0.legend(fontsize=7)
ax1.bar(range(len(stats)), [float(s.variance) for s in stats.values()],
        color=[f"C{i}" for i in range(len(stats))])
ax1.set_xticks(range(len(stats)), [n.split(" ")[0] for n in stats], fontsize=8)
ax1.set(yscale="log", title="variance of one estimate (trace)")
fig.tight_layout()
plt.show()

# %% [markdown]
# The unbiased estimators agree with the exact gradient within 4 standard errors, and
# DisARM has the smallest variance of them.

# %%
for name in ("REINFORCE", "ARM", "DisARM"):
  s = stats[name]
  assert np.all(np.abs(np.asarray(s.mean - exact)) < 4 * np.asarray(s.stderr) + 1e-6), name
assert stats["DisARM"].variance < stats["ARM"].variance < stats["REINFORCE"].variance
