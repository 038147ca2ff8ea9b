"""Learning-rate schedule and optimizers of the original ALBERT release (``optimization.py``, ``lamb_optimizer.py``).

Reproduced exactly, quirks included:

* the schedule decays polynomially to 0 over ``num_train_steps`` counted from step 0, and a linear warmup
  overrides it while ``step - start_warmup_step < num_warmup_steps``. So the lr is 0 at step 0 and jumps to
  ``init_lr * (1 - W/T)**power`` when warmup ends;
* AdamW and LAMB keep Adam moments **without bias correction** and add decoupled weight decay to the update;
  LAMB then scales the update of each tensor by the trust ratio ``||w|| / ||update||``;
* variables whose name matches (``re.search``) ``LayerNorm``, ``layer_norm`` or ``bias`` get neither weight
  decay nor the trust ratio; embeddings, kernels and output weights get both;
* gradients are clipped by global norm 1.0 before the update. As in TF1, ``tf.clip_by_global_norm`` measures a
  sparse (``tf.IndexedSlices``, e.g. from ``tf.gather``) gradient by its values before duplicate rows are summed;
  the optimizers then densify it, so every row's moments decay as in TF1.

tf-models-official (``official.modeling.optimization``) is not reused: its ``LAMB`` divides the moments by
``1 - beta**t`` (bias correction), its ``legacy_adamw.AdamWeightDecay`` is Keras' Adam (bias-corrected) with the
decay applied to the weights before the Adam step, both are legacy (OptimizerV2) optimizers, and its warmup
schedules ramp towards ``decay(warmup_steps)`` instead of ``init_lr`` (``PolynomialWarmUp`` also never gives
lr 0 at step 0) and have no ``start_warmup_step``.

The optimizers subclass the tf_keras 2.11+ ``Optimizer``. Its ``apply_gradients`` sums the gradients across
replicas (``tf.distribute``) *before* clipping by ``global_clipnorm``, so ``create_optimizer`` clips the
aggregated gradients. (On TPU the original clipped per core and then summed; that is not reproduced.) The lr
is evaluated from the optimizer's ``iterations`` before each update, as the original evaluated it from
``global_step`` before incrementing it, so ``tf.train.Checkpoint(optimizer=...)`` restores the step, the
moments and the lr together.
"""
from __future__ import annotations

import numbers
import re
from typing import Any, Callable, Optional, Sequence

import tensorflow as tf
import tf_keras as keras

DEFAULT_EXCLUDE_FROM_WEIGHT_DECAY: tuple[str, ...] = ("LayerNorm", "layer_norm", "bias")
OPTIMIZER_NAMES: tuple[str, ...] = ("adamw", "lamb")

NameFn = Callable[[tf.Variable], str]


def _tf1_style_name(variable: tf.Variable) -> str:
    """Returns ``variable.name`` without its ``:<output index>`` suffix, as the original matched it."""
    return re.sub(r":\d+$", "", variable.name)


def _check_int(value: Any, arg_name: str, minimum: Optional[int] = None) -> int:
    """Returns ``value`` as an int, or raises ValueError if it is not an integer (at least ``minimum``)."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise ValueError(f"{arg_name} must be an int; got {value!r}.")
    if minimum is not None and value < minimum:
        raise ValueError(f"{arg_name} must be >= {minimum}; got {value!r}.")
    return int(value)


def _check_patterns(patterns: Sequence[str], arg_name: str) -> list[str]:
    """Validates a list of regular expressions and returns it as a new list."""
    if isinstance(patterns, str):
        raise TypeError(f"{arg_name} must be a list of regular expressions, not the single string {patterns!r}.")
    patterns = list(patterns)
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise TypeError(f"{arg_name} must contain strings; got {pattern!r}.")
        re.compile(pattern)
    return patterns


@keras.saving.register_keras_serializable(package="albert_tf")
class WarmupPolynomialDecay(keras.optimizers.schedules.LearningRateSchedule):
    """The original ``create_optimizer`` schedule: polynomial decay from step 0, overridden by linear warmup.

    ``decay(step) = init_lr * (1 - min(step, T) / T) ** poly_power`` with ``T = num_train_steps``.
    If ``num_warmup_steps = W > 0`` and ``s = step - start_warmup_step < W``, the lr is ``init_lr * s / W``
    instead (negative when ``step < start_warmup_step``, as in the original).

    Called with a scalar integer step (tensor or int); returns a scalar float32 tensor.
    """

    def __init__(
        self,
        init_lr: float,
        num_train_steps: int,
        num_warmup_steps: int = 0,
        poly_power: float = 1.0,
        start_warmup_step: int = 0,
        name: Optional[str] = None,
    ):
        super().__init__()
        if poly_power < 0:
            raise ValueError(f"poly_power must be >= 0; got {poly_power!r}.")
        self.init_lr = float(init_lr)
        self.num_train_steps = _check_int(num_train_steps, "num_train_steps", minimum=1)
        self.num_warmup_steps = _check_int(num_warmup_steps, "num_warmup_steps", minimum=0)
        self.poly_power = float(poly_power)
        self.start_warmup_step = _check_int(start_warmup_step, "start_warmup_step")
        self.name = name

    def __call__(self, step: tf.Tensor | int) -> tf.Tensor:
        with tf.name_scope(self.name or "WarmupPolynomialDecay"):
            step = tf.cast(step, tf.int64)
            # tf.compat.v1.train.polynomial_decay with end_learning_rate=0 and cycle=False.
            decay_steps = tf.constant(self.num_train_steps, tf.float32)
            progress = tf.minimum(tf.cast(step, tf.float32), decay_steps) / decay_steps
            decayed = self.init_lr * tf.pow(1.0 - progress, self.poly_power)
            if self.num_warmup_steps == 0:
                return decayed
            # The original subtracts in integers, then converts to float.
            warmup_step = step - self.start_warmup_step
            warmup = self.init_lr * (
                tf.cast(warmup_step, tf.float32) / tf.constant(self.num_warmup_steps, tf.float32)
            )
            return tf.where(warmup_step < self.num_warmup_steps, warmup, decayed)

    def get_config(self) -> dict[str, Any]:
        return {
            "init_lr": self.init_lr,
            "num_train_steps": self.num_train_steps,
            "num_warmup_steps": self.num_warmup_steps,
            "poly_power": self.poly_power,
            "start_warmup_step": self.start_warmup_step,
            "name": self.name,
        }


class _AdamNoBiasCorrection(keras.optimizers.Optimizer):
    """Shared part of AdamW and LAMB: Adam moments without bias correction plus decoupled weight decay.

    Per variable ``w`` with gradient ``g`` (dense or ``tf.IndexedSlices``, densified as TF1 did):
    ``m = b1*m + (1-b1)*g``; ``v = b2*v + (1-b2)*g**2``; ``u = m / (sqrt(v) + eps)``; ``u += wd*w`` if
    decayed; then ``w -= lr * u`` after ``_scale_update`` (LAMB's trust ratio). The slots are named
    ``adam_m/<var>`` and ``adam_v/<var>``.

    Which variables are decayed is decided once, in ``build``, from ``name_fn(variable)`` (default: the
    variable's name without ``:0``); ``name_fn`` lets callers match against TF1 names instead. ``name_fn`` is
    not part of ``get_config``: pass it again when re-creating the optimizer from a config.
    """

    def __init__(
        self,
        learning_rate: float | keras.optimizers.schedules.LearningRateSchedule,
        weight_decay_rate: float,
        beta_1: float,
        beta_2: float,
        epsilon: float,
        exclude_from_weight_decay: Optional[Sequence[str]],
        name_fn: Optional[NameFn],
        name: str,
        **kwargs: Any,
    ):
        if kwargs.get("weight_decay") is not None:
            raise ValueError(
                "Use weight_decay_rate, not weight_decay: the Keras base-class decay is not the original's."
            )
        kwargs["weight_decay"] = None  # Keeps the base class from applying its own decay.
        super().__init__(name=name, **kwargs)
        for arg_name, value in (("beta_1", beta_1), ("beta_2", beta_2)):
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{arg_name} must be in [0, 1); got {value!r}.")
        if epsilon < 0 or weight_decay_rate < 0:
            raise ValueError(
                f"epsilon and weight_decay_rate must be >= 0; got {epsilon!r} and {weight_decay_rate!r}."
            )
        if name_fn is not None and not callable(name_fn):
            raise TypeError(f"name_fn must be a callable (variable -> str); got {name_fn!r}.")
        self._learning_rate = self._build_learning_rate(learning_rate)
        self.weight_decay_rate = float(weight_decay_rate)
        self.beta_1 = float(beta_1)
        self.beta_2 = float(beta_2)
        self.epsilon = float(epsilon)
        if exclude_from_weight_decay is None:
            exclude_from_weight_decay = DEFAULT_EXCLUDE_FROM_WEIGHT_DECAY
        self.exclude_from_weight_decay = _check_patterns(exclude_from_weight_decay, "exclude_from_weight_decay")
        self._name_fn = name_fn or _tf1_style_name

    def weight_decay_applies(self, name: str) -> bool:
        """True when a variable called ``name`` gets weight decay (rate > 0 and no exclusion pattern matches)."""
        if not self.weight_decay_rate:
            return False
        return not any(re.search(pattern, name) for pattern in self.exclude_from_weight_decay)

    def build(self, var_list: Sequence[tf.Variable]) -> None:
        """Creates the zero-initialised moments of every variable and fixes its per-variable options."""
        super().build(var_list)
        if getattr(self, "_built", False):
            return
        self._built = True
        self._adam_m = [self.add_variable_from_reference(var, "adam_m") for var in var_list]
        self._adam_v = [self.add_variable_from_reference(var, "adam_v") for var in var_list]
        names = [self._name_fn(var) for var in var_list]
        # Plain Python flags, indexed like the slots; kept out of checkpoints.
        self._decay_flags = self._no_dependency(tuple(self.weight_decay_applies(n) for n in names))
        self._build_extra_flags(names)

    def _build_extra_flags(self, names: Sequence[str]) -> None:
        """Hook for subclasses that need more per-variable flags (names are in ``build`` order)."""

    def _scale_update(self, index: int, update: tf.Tensor, variable: tf.Variable) -> tf.Tensor:
        """Returns the update to multiply by the lr; AdamW leaves it unchanged."""
        return update

    def update_step(self, gradient: tf.Tensor | tf.IndexedSlices, variable: tf.Variable) -> None:
        index = self._index_dict[self._var_key(variable)]
        m = self._adam_m[index]
        v = self._adam_v[index]
        dtype = variable.dtype
        lr = tf.cast(self.learning_rate, dtype)
        # TF1 applied the dense formulas to IndexedSlices, densifying them: every row's moments decay.
        grad = tf.convert_to_tensor(gradient)
        next_m = self.beta_1 * m + (1.0 - self.beta_1) * grad
        next_v = self.beta_2 * v + (1.0 - self.beta_2) * tf.square(grad)
        update = next_m / (tf.sqrt(next_v) + self.epsilon)
        if self._decay_flags[index]:
            update += self.weight_decay_rate * variable
        update = self._scale_update(index, update, variable)
        variable.assign_sub(lr * update)
        m.assign(next_m)
        v.assign(next_v)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "learning_rate": self._serialize_hyperparameter(self._learning_rate),
                "weight_decay_rate": self.weight_decay_rate,
                "beta_1": self.beta_1,
                "beta_2": self.beta_2,
                "epsilon": self.epsilon,
                "exclude_from_weight_decay": list(self.exclude_from_weight_decay),
            }
        )
        return config


@keras.saving.register_keras_serializable(package="albert_tf")
class AdamWeightDecay(_AdamNoBiasCorrection):
    """The original ``AdamWeightDecayOptimizer``: Adam without bias correction, plus decoupled weight decay.

    ``w -= lr * (m / (sqrt(v) + eps) + wd * w)``, the ``wd * w`` term only for variables whose name matches
    none of ``exclude_from_weight_decay`` (regex search). The defaults are those ``create_optimizer`` passes
    (the TF1 class itself defaulted to no decay and no exclusions).

    Args:
      learning_rate: a float or a ``LearningRateSchedule`` of the optimizer's ``iterations``.
      weight_decay_rate, beta_1, beta_2, epsilon: hyper-parameters of the update above.
      exclude_from_weight_decay: regexes; ``None`` means ``["LayerNorm", "layer_norm", "bias"]``.
      name_fn: maps a variable to the name matched against the regexes (default: its name without ``:0``).
      **kwargs: tf_keras ``Optimizer`` arguments (``global_clipnorm``, ``jit_compile``, ...).
    """

    def __init__(
        self,
        learning_rate: float | keras.optimizers.schedules.LearningRateSchedule = 0.001,
        weight_decay_rate: float = 0.01,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-6,
        exclude_from_weight_decay: Optional[Sequence[str]] = None,
        name_fn: Optional[NameFn] = None,
        name: str = "AdamWeightDecay",
        **kwargs: Any,
    ):
        super().__init__(
            learning_rate, weight_decay_rate, beta_1, beta_2, epsilon, exclude_from_weight_decay, name_fn, name,
            **kwargs,
        )


@keras.saving.register_keras_serializable(package="albert_tf")
class LAMB(_AdamNoBiasCorrection):
    """The original ``LAMBOptimizer``: the AdamW update above, scaled per tensor by a trust ratio.

    ``w -= r * lr * u`` where ``u`` is the AdamW update (weight decay included) and
    ``r = ||w|| / ||u||`` (Frobenius norms of the whole tensor, ``w`` before the update), or ``r = 1`` if
    either norm is 0 or the variable's name matches one of ``exclude_from_layer_adaptation``.

    Args: as ``AdamWeightDecay``, plus
      exclude_from_layer_adaptation: regexes; ``None`` means the same list as ``exclude_from_weight_decay``
        (the original also fell back to it for an empty list; here ``[]`` means "adapt every variable").
    """

    def __init__(
        self,
        learning_rate: float | keras.optimizers.schedules.LearningRateSchedule = 0.001,
        weight_decay_rate: float = 0.01,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-6,
        exclude_from_weight_decay: Optional[Sequence[str]] = None,
        exclude_from_layer_adaptation: Optional[Sequence[str]] = None,
        name_fn: Optional[NameFn] = None,
        name: str = "LAMB",
        **kwargs: Any,
    ):
        super().__init__(
            learning_rate, weight_decay_rate, beta_1, beta_2, epsilon, exclude_from_weight_decay, name_fn, name,
            **kwargs,
        )
        if exclude_from_layer_adaptation is None:
            exclude_from_layer_adaptation = self.exclude_from_weight_decay
        self.exclude_from_layer_adaptation = _check_patterns(
            exclude_from_layer_adaptation, "exclude_from_layer_adaptation"
        )

    def layer_adaptation_applies(self, name: str) -> bool:
        """True when a variable called ``name`` gets the trust ratio (no exclusion pattern matches)."""
        return not any(re.search(pattern, name) for pattern in self.exclude_from_layer_adaptation)

    def _build_extra_flags(self, names: Sequence[str]) -> None:
        self._adapt_flags = self._no_dependency(tuple(self.layer_adaptation_applies(n) for n in names))

    def _scale_update(self, index: int, update: tf.Tensor, variable: tf.Variable) -> tf.Tensor:
        if not self._adapt_flags[index]:
            return update
        w_norm = tf.norm(variable)
        u_norm = tf.norm(update)
        ratio = tf.where(w_norm > 0.0, tf.where(u_norm > 0.0, w_norm / u_norm, 1.0), 1.0)
        return ratio * update

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["exclude_from_layer_adaptation"] = list(self.exclude_from_layer_adaptation)
        return config


def create_optimizer(
    init_lr: float,
    num_train_steps: int,
    num_warmup_steps: int,
    optimizer: str = "adamw",
    poly_power: float = 1.0,
    start_warmup_step: int = 0,
    weight_decay_rate: float = 0.01,
    clip_norm: Optional[float] = 1.0,
    name_fn: Optional[NameFn] = None,
) -> AdamWeightDecay | LAMB:
    """Builds the original optimizer: ``"adamw"`` or ``"lamb"`` with the warmup/decay schedule and clipping.

    Both use beta_1 0.9, beta_2 0.999, epsilon 1e-6 and exclude ``LayerNorm``/``layer_norm``/``bias`` from weight
    decay (and, for LAMB, from the trust ratio). The lr is ``WarmupPolynomialDecay(init_lr, num_train_steps,
    num_warmup_steps, poly_power, start_warmup_step)`` of the optimizer's ``iterations``. Gradients are
    clipped by global norm ``clip_norm`` after cross-replica aggregation (``None`` disables clipping).
    Training loops apply the optimizer's ``apply_gradients``, which also increments ``iterations``.

    Raises:
      ValueError: for an unknown ``optimizer`` name, a non-positive ``clip_norm`` or a bad schedule argument.
    """
    if optimizer not in OPTIMIZER_NAMES:
        raise ValueError(f"Unknown optimizer {optimizer!r}: expected one of {', '.join(OPTIMIZER_NAMES)}.")
    if clip_norm is not None and not clip_norm > 0:
        raise ValueError(f"clip_norm must be > 0 (or None for no clipping); got {clip_norm!r}.")
    schedule = WarmupPolynomialDecay(
        init_lr,
        num_train_steps,
        num_warmup_steps=num_warmup_steps,
        poly_power=poly_power,
        start_warmup_step=start_warmup_step,
    )
    optimizer_class = AdamWeightDecay if optimizer == "adamw" else LAMB
    return optimizer_class(
        learning_rate=schedule,
        weight_decay_rate=weight_decay_rate,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-6,
        exclude_from_weight_decay=list(DEFAULT_EXCLUDE_FROM_WEIGHT_DECAY),
        name_fn=name_fn,
        global_clipnorm=clip_norm,
    )
