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

On JAX, `steps_per_execution = k > 1` runs k steps in one jitted `jax.lax.scan` (`ScannedSteps`,
the base of every model here, the VAE and autoencoders of `aae.models` included); Keras 3.15 runs
them as k dispatches of one step. To be deleted once a Keras release has keras-team/keras#23527.
"""
from __future__ import annotations

import itertools

import keras
from keras import ops

__all__ = ["adam", "cosine_rate", "PhaseOptimizers", "PhasedModel", "ScannedSteps"]

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
        # phase name -> the variables it updates; set past Keras's tracking, which would list the
        # model's variables among the optimizer's own (on JAX a second copy of each in the state,
        # the same buffer twice, which a donating jitted call refuses).
        object.__setattr__(self, "phase_variables", dict(variables))
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


# ---------------------------------------------------------------------------------------------
# Training steps scanned on the device (JAX only). Removable: delete `ScannedSteps` and
# `_scanned_train_function` (and make `_Tracked` a plain `keras.Model`) once a Keras release has
# keras-team/keras#23527 ("on-device jax.lax.scan for steps_per_execution > 1"); Keras 3.15's JAX
# trainer runs `steps_per_execution = k` as a Python loop of k single jitted steps.

class ScannedSteps(keras.Model):
    """On JAX, `fit` with `steps_per_execution = k > 1` runs each group of k batches as ONE
    jitted call that `jax.lax.scan`s the model's own pure `train_step(state, data)` over the k
    batches stacked on the device. Only `make_train_function` is replaced: Keras's `fit` loop,
    epoch iterator, callbacks (called once per group, as Keras does), progress bar, history and
    validation are its own. A group that cannot be stacked, the last, shorter one of an epoch or
    one holding the short last batch, runs as single jitted steps (each shape compiled once), so
    no batch is dropped and nothing is recompiled from epoch to epoch.

    `scan_unroll`: `jax.lax.scan`'s `unroll` (1: a loop on the device; k or True: k steps laid
    out in one program, longer to compile). `scan_steps = False` keeps Keras's own loop. Set
    either before the first `fit` (the train function is built once). TensorFlow and PyTorch
    are untouched.
    """

    scan_steps = True
    scan_unroll = 1

    if _BACKEND == "jax":
        def make_train_function(self, force=False):
            if self.train_function is not None and not force:
                return
            if not (self.scan_steps and self.steps_per_execution > 1 and self.jit_compile
                    and not self.run_eagerly and keras.distribution.distribution() is None
                    and not keras.config.is_nnx_enabled()):
                return super().make_train_function(force)
            self.train_function = _scanned_train_function(self)


def _scanned_train_function(model):
    """`train_function(state, iterator)` as Keras's fit loop calls it: the next k batches of
    `iterator` in one scanned call when they stack, else one jitted step each."""
    import jax
    import numpy as np

    k, unroll = model.steps_per_execution, model.scan_unroll
    model._scan_traces = 0  # traces of the scanned k steps (the tests check the scan is taken)

    def steps(state, batches):
        model._scan_traces += 1
        stacked = jax.tree_util.tree_map(lambda *b: jax.numpy.stack(b), *batches)

        def body(state, data):
            logs, state = model.train_step(state, data)
            return state, logs

        state, logs = jax.lax.scan(body, state, stacked, unroll=unroll)
        return jax.tree_util.tree_map(lambda t: t[-1], logs), state  # the last step's, as Keras

    scanned = jax.jit(steps, donate_argnums=0)
    single = jax.jit(model.train_step, donate_argnums=0)

    def shapes(batch):
        leaves, treedef = jax.tree_util.tree_flatten(batch)
        return treedef, [np.shape(leaf) for leaf in leaves]

    def train_function(state, iterator):
        batches = list(itertools.islice(iterator, k))
        if not batches:
            raise StopIteration  # as Keras's own loop: the epoch iterator catches it
        first = shapes(batches[0])
        if len(batches) == k and all(shapes(b) == first for b in batches[1:]):
            return scanned(state, tuple(batches))
        for data in batches:
            logs, state = single(state, data)
        return logs, state

    return train_function


class _Tracked(ScannedSteps):
    """Named `keras.metrics.Mean` trackers, one per name in `tracked`, shown in the progress bar.

    Each is updated with the batch size as its weight, as Keras weights its own "loss" tracker,
    so a term's epoch mean and the loss's agree over a short last batch too.
    """

    tracked = ()

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # Attributes, not an overridden `metrics` property: Keras then lists them after its own
        # loss tracker, and resets all of them every epoch.
        self.trackers = {n: keras.metrics.Mean(name=n) for n in self.tracked}

    def _update(self, terms, batch_size):
        for name, value in terms.items():
            if name in self.trackers:
                self.trackers[name].update_state(value, sample_weight=batch_size)
        return {name: t.result() for name, t in self.trackers.items()}


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
