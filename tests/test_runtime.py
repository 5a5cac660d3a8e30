"""aae.runtime's progress bar: Keras's own, with the right step count under steps_per_execution."""
import time

import keras
import numpy as np

from aae.runtime import ProgressBar


class _Slow(keras.callbacks.Callback):
    """Slows each compiled call down past the bar's redraw interval (0.05 s), so every step count
    the bar is given gets drawn."""

    def on_train_batch_end(self, batch, logs=None):
        time.sleep(0.06)


# PyTorch runs one step per call (Keras refuses more), so its bar has no overshoot to correct;
# there the test checks that ours still counts every step.
SPE = 1 if keras.backend.backend() == "torch" else 32


def _fit_output(capsys, callbacks):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse", steps_per_execution=SPE)
    x = np.zeros((469 * 2, 2), "float32")  # 469 batches of 2, run in calls of 32 steps
    model.fit(x, x[:, :1], batch_size=2, epochs=1, verbose=1, callbacks=[_Slow(), *callbacks])
    return capsys.readouterr().out


def test_progress_bar_stops_at_the_epochs_steps(capsys):
    if SPE > 1:
        # Keras's default bar reports the last call as if it were full: 480 of 469 steps.
        assert "480/469" in _fit_output(capsys, [])
    ours = _fit_output(capsys, [ProgressBar()])
    assert "480/469" not in ours and "469/469" in ours
    assert "448/469" in ours  # the calls before the last are counted as Keras counts them
