"""Models trained in phases, each phase with its own optimizer, on every Keras backend.

Keras's own `train_step` minimises one loss with one optimizer. An adversarial model runs
several updates per batch (reconstruction, discriminator, generator), each on its own variables
with its own optimizer. A subclass of `PhasedModel` writes them once, in
`phases(x, y, step, training)` with `keras.ops`; `step(phase, loss_fn)` runs one phase. Only the
gradient-and-update plumbing below differs per backend: a tape on TensorFlow, `backward()` on
PyTorch, and on JAX `jax.value_and_grad` over the phase's variables inside a
`keras.StatelessScope` followed by the optimizer's `stateless_apply` (keras-team/keras#18881).
Either way the whole batch is one compiled step (`tf.function`/XLA, `jax.jit`; eager on PyTorch
unless `jit_compile=True`).
"""
from __future__ import annotations

import keras
from keras import ops

from .models import _Tracked

__all__ = ["adam", "cosine_rate", "PhaseOptimizers", "PhasedModel"]

_BACKEND = keras.backend.backend()


def cosine_rate(learning_rate, decay_steps=None):
    """`learning_rate` cosine-decayed to 0 over `decay_steps` training steps (None: constant)."""
    if decay_steps is None:
        return learning_rate
    if isinstance(decay_steps, bool) or not isinstance(decay_steps, int) or decay_steps < 1:
        raise ValueError(f"decay_steps is the number of training steps (an integer >= 1) or "
                         f"None for a constant rate, got {decay_steps!r}.")
    return keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps)


def adam(learning_rate, decay_steps=None, beta_1=0.9):
    """Adam for one phase: its rate cosine-decayed to 0 over `decay_steps` (None: constant).

    The phased models' notebooks and scripts build every phase's optimizer with it, so a run
    of a script and of its notebook at the same settings get the same optimizers.
    """
    return keras.optimizers.Adam(cosine_rate(learning_rate, decay_steps), beta_1=beta_1)


class PhaseOptimizers(keras.optimizers.Optimizer):
    """One optimizer per phase, held as the model's single `optimizer`.

    Keras's trainers carry `model.optimizer.variables` through a compiled step (on JAX
    nothing else survives it), so the phases' optimizers live inside this one, as
    `LossScaleOptimizer` holds its inner optimizer. It never applies gradients itself.
    """

    def __init__(self, optimizers, variables, name="phase_optimizers"):
        super().__init__(learning_rate=0.0, name=name)
        self.optimizers = dict(optimizers)          # phase name -> keras optimizer
        self.phase_variables = dict(variables)      # phase name -> the variables it updates
        if set(self.optimizers) != set(self.phase_variables):
            raise ValueError(f"every phase needs an optimizer and its variables, got optimizers "
                             f"for {sorted(self.optimizers)} and variables for "
                             f"{sorted(self.phase_variables)}.")

    def build(self, var_list=None):
        # Each phase's optimizer gets slots for its own variables only, whatever Keras passes.
        for phase, optimizer in self.optimizers.items():
            if not optimizer.built:
                optimizer.build(self.phase_variables[phase])
        super().build([])

    @property
    def variables(self):
        return self._variables + [v for o in self.optimizers.values() for v in o.variables]

    def __getitem__(self, phase):
        return self.optimizers[phase]


class PhasedModel(_Tracked):
    """A model whose `train_step` runs `phases`; every tracked value is a phase's output.

    Subclasses define `phase_variables()` ({phase: variables}) and `phases(x, y, step, training)`,
    which returns a dict of scalars to track. `step(phase, loss_fn)` calls `loss_fn()` (which
    returns `(loss, aux)`), updates that phase's variables with its optimizer when training, and
    returns `(loss, aux)`; aux leaves the phase without gradients.
    """

    def compile_phases(self, optimizers, **kwargs):
        """`optimizers`: {phase: keras optimizer}; kwargs go to keras.Model.compile."""
        super().compile(optimizer=PhaseOptimizers(optimizers, self.phase_variables()), **kwargs)

    def phase_variables(self):
        raise NotImplementedError

    def phases(self, x, y, step, training):
        raise NotImplementedError

    def _tracked_values(self, x, y, step, training):
        terms = self.phases(x, y, step, training)
        return self._update(terms, ops.shape(x)[0])

    if _BACKEND == "jax":
        # A pure function of the state Keras hands in: `_jax_step` maps every variable to its
        # current value in a StatelessScope, each phase writes its new values back into it.
        def train_step(self, state, data):
            refs = (self.trainable_variables, self.non_trainable_variables,
                    self.optimizer.variables, self.metrics_variables)
            return _jax_step(self, refs, state, data, training=True)

        def test_step(self, state, data):
            refs = (self.trainable_variables, self.non_trainable_variables, self.metrics_variables)
            return _jax_step(self, refs, state, data, training=False)

    else:
        # TensorFlow and PyTorch: variables are stateful, each phase updates them in place.
        def train_step(self, data):
            x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
            return self._tracked_values(x, y, self._stateful_step, training=True)

        def test_step(self, data):
            x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
            return self._tracked_values(x, y, _evaluate_only, training=False)

    if _BACKEND == "tensorflow":
        def _stateful_step(self, phase, loss_fn):
            import tensorflow as tf

            variables = self.optimizer.phase_variables[phase]
            with tf.GradientTape() as tape:
                loss, aux = loss_fn()
            self.optimizer[phase].apply(tape.gradient(loss, variables), variables)
            return loss, aux

    elif _BACKEND == "torch":
        def _stateful_step(self, phase, loss_fn):
            import torch

            variables = self.optimizer.phase_variables[phase]
            for v in variables:
                v.value.grad = None
            loss, aux = loss_fn()
            loss.backward()
            with torch.no_grad():
                self.optimizer[phase].apply([v.value.grad for v in variables], variables)
            return loss.detach(), keras.tree.map_structure(lambda t: t if t is None else t.detach(), aux)


def _evaluate_only(phase, loss_fn):
    return loss_fn()


def _jax_step(model, refs, state, data, training):
    """Run the phases with every variable mapped to its value in `state`; return the new state."""
    x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
    mapping = [(v, value) for variables, values in zip(refs, state) for v, value in zip(variables, values)]
    with keras.StatelessScope(state_mapping=mapping) as scope:
        step = _JaxPhase(model, scope) if training else _evaluate_only
        logs = model._tracked_values(x, y, step, training)
    return logs, tuple([scope.get_current_value(v) for v in variables] for variables in refs)


class _JaxPhase:
    """One phase's update on JAX, inside `_jax_step`'s scope, which holds the current values:
    gradients by `jax.value_and_grad` of the loss as a function of the phase's variables, the
    update by the phase optimizer's `stateless_apply`; new values go back into the scope."""

    def __init__(self, model, scope):
        self.model, self.scope = model, scope

    def __call__(self, phase, loss_fn):
        import jax

        outer = self.scope
        model, variables = self.model, self.model.optimizer.phase_variables[phase]
        every = model.trainable_variables + model.non_trainable_variables + model.optimizer.variables
        stateful = model.non_trainable_variables  # seed generators advance inside the phase

        def loss_of(values):
            mapping = [(v, outer.get_current_value(v)) for v in every] + list(zip(variables, values))
            with keras.StatelessScope(state_mapping=mapping) as scope:
                loss, aux = loss_fn()
            return loss, (aux, [scope.get_current_value(v) for v in stateful])

        current = [outer.get_current_value(v) for v in variables]
        (loss, (aux, new_state)), grads = jax.value_and_grad(loss_of, has_aux=True)(current)
        optimizer = model.optimizer[phase]
        new_values, new_slots = optimizer.stateless_apply(
            [outer.get_current_value(v) for v in optimizer.variables], grads, current)
        for v, value in [*zip(stateful, new_state), *zip(variables, new_values),
                         *zip(optimizer.variables, new_slots)]:
            outer.add_update((v, value))
        return loss, jax.lax.stop_gradient(aux)
