"""DeepFaceLab's RMSprop and AdaBelief as Keras 3 optimizers, plus state save/load.

Both follow DFL's update rules (no bias correction, epsilon 1e-6 outside the square root) and
add its three extras:

* lr_dropout = p, the *keep* probability of each element's update: every step a fresh
  Bernoulli(p) mask multiplies the update, so with DFL's p = 0.3 about 30 % of the weights
  move and 70 % stay put that step. The moment estimates are still updated everywhere;
  only the weight change is masked. 1.0 turns it off. The masks come from a
  keras.random.SeedGenerator whose state is an optimizer variable, so it runs inside
  a compiled step (tf.function, torch, jax.jit) and is saved and restored with the rest of the state.
* lr_cos = N: learning rate × (cos(2π·iteration/N) + 1)/2, a full cosine cycle every N
  iterations (SAEHD uses 500 together with lr_dropout). 0 turns it off.
* clipnorm = c: clip by the global norm of all gradients (DFL's clipgrad uses 1.0); it is
  Keras' `global_clipnorm`. 0 turns it off.

Saving: `optimizer_state(opt)` gives {variable path: array} for np.savez (no pickle), and
`load_optimizer_state(opt, state)` puts it back once `opt.build(trainable_variables)` has
created the slots. Slot names derive from the model variables' paths, which
core/nn/archis.py keeps identical across processes; the optimizer needs a fixed `name`
too (the defaults are fixed names, not Keras' auto-numbered ones).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import keras
from keras import ops

# DFL's RMSprop and AdaBelief both add np.finfo(float32).resolution (1e-6) outside the square root
DFL_EPSILON = float(np.finfo(np.float32).resolution)


def _srl(x: Any, shift: int) -> Any:
    """Logical right shift of int32 bits (keras.ops' right_shift is arithmetic on signed ints)."""
    return ops.bitwise_and(ops.right_shift(x, shift), (1 << (32 - shift)) - 1)


def _fmix32(x: Any) -> Any:
    """MurmurHash3's 32-bit finaliser on int32 bit patterns: a bijection whose output bits all
    depend on every input bit. int32 products wrap mod 2^32 on every backend, so the bits equal
    the uint32 original's, and TensorFlow, PyTorch and JAX give the same masks."""
    for shift, factor in ((16, 0x85EBCA6B - 2**32), (13, 0xC2B2AE35 - 2**32)):
        x = ops.bitwise_xor(x, _srl(x, shift)) * factor
    return ops.bitwise_xor(x, _srl(x, 16))


class _DflOptimizer(keras.optimizers.Optimizer):
    """Shared lr_dropout / lr_cos / clipnorm handling for DFL-style optimizers."""

    def __init__(self, learning_rate: float, lr_dropout: float, lr_cos: int, clipnorm: float,
                 seed: int | None, name: str, **kwargs: Any) -> None:
        if not 0.0 < lr_dropout <= 1.0:
            raise ValueError(f"lr_dropout {lr_dropout}: the keep probability must be in (0, 1]")
        if lr_cos < 0 or clipnorm < 0:
            raise ValueError("lr_cos and clipnorm must be >= 0 (0 turns them off)")
        kwargs.pop("global_clipnorm", None)
        super().__init__(learning_rate=learning_rate, name=name,
                         global_clipnorm=float(clipnorm) if clipnorm > 0 else None, **kwargs)
        self.lr_dropout = float(lr_dropout)
        self.lr_cos = int(lr_cos)
        self.seed = seed
        self._seed_generator = None
        if self.lr_dropout < 1.0:
            with keras.name_scope(self.name):
                self._seed_generator = keras.random.SeedGenerator(seed, name="lr_dropout_seed")
            self._track_variable(self._seed_generator.state)

    def _step_lr(self, learning_rate: Any, dtype: str) -> Any:
        """Learning rate for this iteration, with the lr_cos cycle applied."""
        lr = ops.cast(learning_rate, dtype)
        if self.lr_cos:
            phase = ops.cast(self.iterations, dtype) * (2.0 * math.pi / self.lr_cos)
            lr = lr * (ops.cos(phase) + 1.0) / 2.0
        return lr

    def _dropout(self, update: Any, variable: Any) -> Any:
        """Keep each element of `update` with probability lr_dropout, zero it otherwise.

        The mask is a counter hash: element i keeps its update when
        fmix32(fmix32(i ^ k0) ^ k1) / 2⁸ < p·2²⁴, with (k0, k1) fresh from the seed generator
        every step and variable. It is plain integer arithmetic, so XLA fuses it into the
        update loop (`make_train_step` compiles the update with XLA): Quick96's 38M-weight
        RMSprop step takes 27 ms that way, against 89 ms for a Philox mask unfused.
        """
        if self._seed_generator is None:
            return update
        n = int(np.prod(variable.shape))
        key = ops.cast(self._seed_generator.next(), "int32")
        bits = _fmix32(ops.bitwise_xor(_fmix32(ops.bitwise_xor(ops.arange(n, dtype="int32"), key[0])), key[1]))
        keep = _srl(bits, 8) < min(2**24, int(self.lr_dropout * 2**24))    # the top 24 bits
        return update * ops.cast(ops.reshape(keep, variable.shape), update.dtype)

    def get_config(self) -> dict:
        config = super().get_config()
        config["clipnorm"] = config.pop("global_clipnorm") or 0.0
        config.update({"lr_dropout": self.lr_dropout, "lr_cos": self.lr_cos, "seed": self.seed})
        return config


@keras.saving.register_keras_serializable(package="visage")
class RMSprop(_DflOptimizer):
    """DFL's RMSprop: a ← ρa + (1-ρ)g²;  w ← w - lr·g / (√a + ε).

    Quick96 uses lr 2e-4 with lr_dropout 0.3; SAEHD uses lr 5e-5 when AdaBelief is off.
    """

    def __init__(self, learning_rate: float = 1e-3, rho: float = 0.9,
                 epsilon: float = DFL_EPSILON, lr_dropout: float = 1.0, lr_cos: int = 0,
                 clipnorm: float = 0.0, seed: int | None = None, name: str = "rmsprop",
                 **kwargs: Any) -> None:
        super().__init__(learning_rate, lr_dropout, lr_cos, clipnorm, seed, name, **kwargs)
        self.rho, self.epsilon = float(rho), float(epsilon)

    def build(self, var_list: list) -> None:
        if self.built:
            return
        super().build(var_list)
        self._accumulators = self.add_optimizer_variables(var_list, "accumulator")

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        g = ops.cast(gradient, variable.dtype)
        acc = self._accumulators[self._get_variable_index(variable)]
        new_acc = self.rho * acc + (1.0 - self.rho) * ops.square(g)
        self.assign(acc, new_acc)
        update = self._step_lr(learning_rate, variable.dtype) * g / (ops.sqrt(new_acc) + self.epsilon)
        self.assign_sub(variable, self._dropout(update, variable))

    def get_config(self) -> dict:
        return {**super().get_config(), "rho": self.rho, "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="visage")
class AdaBelief(_DflOptimizer):
    """DFL's AdaBelief: m ← β₁m + (1-β₁)g;  v ← β₂v + (1-β₂)(g-m)²;  w ← w - lr·m / (√v + ε).

    Like DFL, without bias correction. SAEHD's default optimizer, lr 5e-5.
    """

    def __init__(self, learning_rate: float = 1e-3, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = DFL_EPSILON, lr_dropout: float = 1.0,
                 lr_cos: int = 0, clipnorm: float = 0.0, seed: int | None = None,
                 name: str = "adabelief", **kwargs: Any) -> None:
        super().__init__(learning_rate, lr_dropout, lr_cos, clipnorm, seed, name, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)

    def build(self, var_list: list) -> None:
        if self.built:
            return
        super().build(var_list)
        self._ms = self.add_optimizer_variables(var_list, "m")
        self._vs = self.add_optimizer_variables(var_list, "v")

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        g = ops.cast(gradient, variable.dtype)
        index = self._get_variable_index(variable)
        m, v = self._ms[index], self._vs[index]
        new_m = self.beta_1 * m + (1.0 - self.beta_1) * g
        new_v = self.beta_2 * v + (1.0 - self.beta_2) * ops.square(g - new_m)
        self.assign(m, new_m)
        self.assign(v, new_v)
        update = self._step_lr(learning_rate, variable.dtype) * new_m / (ops.sqrt(new_v) + self.epsilon)
        self.assign_sub(variable, self._dropout(update, variable))

    def get_config(self) -> dict:
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon}


def optimizer_state(opt: keras.optimizers.Optimizer) -> dict[str, np.ndarray]:
    """Every optimizer variable (iteration, learning rate, slots, dropout seed) by path.

    The result goes straight into np.savez; works for a LossScaleOptimizer wrapper too.
    """
    if not opt.built:
        raise ValueError(f"optimizer {opt.name!r} has no state yet: build it or take a step first")
    state: dict[str, np.ndarray] = {}
    for variable in opt.variables:
        if variable.path in state:
            raise ValueError(f"optimizer variable path {variable.path!r} is not unique")
        state[variable.path] = np.array(keras.ops.convert_to_numpy(variable))
    return state


def load_optimizer_state(opt: keras.optimizers.Optimizer, state: dict[str, np.ndarray],
                         strict: bool = True) -> list[str]:
    """Restore what optimizer_state() saved; returns the paths left at their initial value.

    Call `opt.build(trainable_variables)` first so the slots exist. With strict=True any
    missing, unexpected or mis-shaped entry raises ValueError before anything is assigned;
    with strict=False matching entries load and the rest keep their fresh values (for a
    part that was deliberately re-initialised).
    """
    if not opt.built:
        raise ValueError(f"optimizer {opt.name!r} is not built: call opt.build(variables) first")
    variables = {v.path: v for v in opt.variables}
    missing = sorted(set(variables) - set(state))
    unexpected = sorted(set(state) - set(variables))
    mismatched = sorted(p for p in set(variables) & set(state)
                        if tuple(variables[p].shape) != tuple(np.shape(state[p])))
    if strict and (missing or unexpected or mismatched):
        raise ValueError(f"optimizer state does not match {opt.name!r}: missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]}, wrong shape {mismatched[:3]} "
                         f"({len(missing)}/{len(unexpected)}/{len(mismatched)} in all)")
    for path, variable in variables.items():
        if path in state and path not in mismatched:
            variable.assign(np.asarray(state[path]).astype(variable.dtype))
    return sorted(set(missing) | set(mismatched))
