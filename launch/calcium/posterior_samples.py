"""Posterior samples of the autoregressive recognition network (Speiser et al. 2017, Fig. 2).

Trains unsupervised DeepSpike with the autoregressive posterior on simulated SCF traces, then
plots one trace, its true spikes, the posterior spike probability and posterior samples.
"""
import jax
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from calcium import evaluation, models, train  # noqa: E402
from launch import app  # noqa: E402


def experiment(config, run: app.Run) -> dict:
  model = models.make_model("scf", frame_rate=60.0)
  raw = model.init(tau=0.6, alpha=3.0, beta=0.0, sigma=1.0, rate=1.0)
  sim = jax.jit(jax.vmap(lambda k: model.simulate(raw, k, config.num_frames)))
  spikes, traces = sim(jax.random.split(jax.random.key(config.seed), config.num_cells))
  spikes, traces = np.asarray(spikes), np.asarray(traces)
  ds = train.make_dataset(list(traces))
  tcfg = train.default_config()
  tcfg.update(config.train.to_dict())
  trainer = train.make_trainer(tcfg, ds)
  state = run.train_loop(lambda: trainer.init(jax.random.key(config.seed)), trainer.chunk,
                         config.num_chunks)
  f = ds.fluorescence[0, :config.plot_frames]
  sample = jax.jit(trainer.recognition.sample, static_argnums=3)
  probs, samples, _ = sample(state.recognition_params, f, jax.random.key(1),
                             config.num_plot_samples)
  marginal = np.asarray(probs).mean(0)[:, 0]
  samples = np.asarray(samples)[:, :, 0]
  true = spikes[0, :config.plot_frames, 0]
  t = np.arange(config.plot_frames) / 60.0
  fig, axes = plt.subplots(3, 1, figsize=(10, 6), sharex=True)
  axes[0].plot(t, f[:, 0], lw=0.7)
  axes[0].plot(t[true > 0], np.full(int(true.sum()), f.max() + 0.5), "k|", ms=10,
               label="true spikes")
  axes[0].set(ylabel="fluorescence (noise std)")
  axes[0].legend(loc="upper right")
  axes[1].plot(t, marginal, lw=0.8)
  axes[1].set(ylabel="P(spike)")
  rows, cols = np.nonzero(samples)
  axes[2].plot(t[cols], rows, "k|", ms=4)
  axes[2].set(xlabel="time (s)", ylabel="posterior sample")
  run.save_figure("posterior_samples", fig)
  curve = np.asarray(run.history()["bound_per_frame"])
  return {"posterior_corr": evaluation.pearson(marginal, true),
          "sample_count_ratio": float(samples.sum(1).mean() / max(true.sum(), 1)),
          "final_bound_per_frame": float(curve[-10:].mean())}


if __name__ == "__main__":
  app.run(experiment)
