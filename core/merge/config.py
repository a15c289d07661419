"""Merger settings: DeepFaceLab's `MergerConfigMasked` options as one declarative schema.

The same `SCHEMA` drives the merge prompts, `--opt name=value` / `--config` for batch
merge, and the interactive merger's per-frame state. `MergerConfig` is frozen so a frame's
settings can be shared between frames and compared cheaply; the interactive key map
changes it only through the pure helpers `cycle`, `adjust` and `toggle`, which return a new
config (a key press is a state transition, unit-testable without a window).

Defaults are DeepFaceLab's *class* defaults (what the interactive merger starts from).
DeepFaceLab's prompts offer two different defaults, kept in `PROMPT_DEFAULTS` for the
prompting code: mask_mode `dst` (the class default is learned-prd*learned-dst, which
needs a model that learned masks) and hist_match_threshold 255 (class default 238).
The XSeg mask modes need a trained XSeg model (merge --xseg-model-dir); super resolution is not offered because no
installed package ships a face-enhancer model.
"""
from __future__ import annotations

from dataclasses import asdict, field, make_dataclass, replace
from typing import Any, Mapping

from core.errors import VisageError
from core.options import Option, resolve

from core.merge.compose import BLURS, COLOR_TRANSFERS, COMPOSITES
from core.merge.masks import MASK_BUILDERS

# Each choice list is the dispatch table that runs it (one declaration): a mode added there is offered here.
MODES = ("original", *COMPOSITES)              # 'original' returns the frame before the model runs
MASK_MODES = tuple(MASK_BUILDERS)
COLOR_TRANSFER_MODES = tuple(COLOR_TRANSFERS)
SHARPEN_MODES = ("none", *BLURS)

SCHEMA: list[Option] = [
    Option("mode", str, "overlay", "How the predicted face is put into the frame: overlay = blend by the mask; "
           "hist-match = match the histograms first; seamless = Poisson blending; raw-rgb / raw-predict = the "
           "prediction as is, on the frame / on black; original = the frame unchanged.", prompt="Choose mode",
           choices=MODES),
    Option("masked_hist_match", bool, True, "hist-match modes: match histograms inside the mask only.",
           prompt="Masked hist match?"),
    Option("hist_match_threshold", int, 238, "hist-match modes: lower values darken/clip the brightest "
           "tones of the matched face.", prompt="Hist match threshold", lo=0, hi=255),
    Option("mask_mode", str, "learned-prd*learned-dst", "Which mask limits the swap: dst = landmark hull "
           "of the dst face; learned-* = masks the model predicts; XSeg-* = a trained XSeg model's mask of the predicted "
           "(prd) or the dst face (merge --xseg-model-dir).", prompt="Choose mask mode", choices=MASK_MODES),
    Option("erode_mask_modifier", int, 0, "Shrink (+) or grow (-) the mask.", prompt="Choose erode mask modifier",
           lo=-400, hi=400),
    Option("blur_mask_modifier", int, 0, "Feather the mask edge.", prompt="Choose blur mask modifier", lo=0, hi=400),
    Option("motion_blur_power", int, 0, "Blur the face along its motion between frames (one face per frame "
           "only).", prompt="Choose motion blur power", lo=0, hi=100),
    Option("output_face_scale", int, 0, "Scale the pasted face (percent).", prompt="Choose output face scale "
           "modifier", lo=-50, hi=50),
    Option("color_transfer_mode", str, "rct", "Recolour the predicted face toward the dst face.",
           prompt="Color transfer to predicted face", choices=COLOR_TRANSFER_MODES),
    Option("sharpen_mode", str, "none", "Filter used by blursharpen_amount.", prompt="Choose sharpen mode",
           choices=SHARPEN_MODES),
    Option("blursharpen_amount", int, 0, "Sharpen (+) or blur (-) the face.", prompt="Choose blur/sharpen amount",
           lo=-100, hi=100),
    Option("image_denoise_power", int, 0, "Median-filter the dst frame before compositing.",
           prompt="Choose image degrade by denoise power", lo=0, hi=500),
    Option("bicubic_degrade_power", int, 0, "Soften the face by bicubic down/up-scaling.",
           prompt="Choose image degrade by bicubic rescale power", lo=0, hi=100),
    Option("color_degrade_power", int, 0, "Reduce the face to 256 colours, blended by power.",
           prompt="Degrade color power of final image", lo=0, hi=100),
    Option("morph_factor", float, 1.0, "AMP only: how far the face is morphed from the dst face (0) to the src "
           "face (1).", prompt="Morph factor", lo=0.0, hi=1.0),
]
OPTIONS: dict[str, Option] = {o.name: o for o in SCHEMA}
PROMPT_DEFAULTS: dict[str, Any] = {"mask_mode": "dst", "hist_match_threshold": 255}
MODEL_ONLY = ("morph_factor",)        # asked only for a model that lists it in its MERGE_OPTIONS (AMP)
CYCLES: dict[str, tuple[str, ...]] = {"mode": MODES, "mask_mode": MASK_MODES,
                                      "color_transfer_mode": COLOR_TRANSFER_MODES, "sharpen_mode": SHARPEN_MODES}


HIST_ONLY = ("masked_hist_match", "hist_match_threshold")


def _applies(name: str, mode: str) -> bool:
    """DeepFaceLab asks only what the mode uses: nothing for original/raw, hist options for hist modes."""
    if mode == "original" or mode.startswith("raw"):
        return False
    return name not in HIST_ONLY or "hist" in mode


def model_merge_options(names: tuple[str, ...], given: Mapping[str, Any], ask: bool) -> dict[str, Any]:
    """The merger options only this model uses (AMP's "Morph factor"), asked first as DeepFaceLab does."""
    return resolve([OPTIONS[n] for n in names], {k: v for k, v in given.items() if k in names}, ask=ask)


def batch_config(given: Mapping[str, Any], ask: bool) -> MergerConfig:
    """Batch merge settings: given (flags/config) > asked (DeepFaceLab's prompt defaults) > prompt defaults.

    Asks the mode first, then only the options that mode uses (none for original/raw, the
    hist options only for the hist modes), never the model-only ones (`model_merge_options`).
    """
    mode = resolve([OPTIONS["mode"]], {k: v for k, v in given.items() if k == "mode"}, ask=ask)["mode"]
    wanted = [o for o in SCHEMA if o.name not in ("mode", *MODEL_ONLY) and _applies(o.name, mode)]
    names = {o.name for o in wanted}
    values = resolve(wanted, {k: v for k, v in given.items() if k in names}, PROMPT_DEFAULTS, ask=ask)
    return MergerConfig.from_options({**PROMPT_DEFAULTS, **given, **values, "mode": mode})


class _MergerConfigMethods:
    @classmethod
    def from_options(cls, given: Mapping[str, Any] | None = None, ask: bool = False) -> MergerConfig:
        """Build from DeepFaceLab option names (flags/config/saved), validating every value."""
        return cls(**resolve(SCHEMA, dict(given or {}), ask=ask))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (str/int/bool only) for the interactive session file."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> MergerConfig:
        """Inverse of `to_dict`; missing keys take defaults, bad values raise VisageError."""
        return cls.from_options(d)


# One frame's merge settings (resolved, validated option values): one field per SCHEMA option, with
# the option's default, so each default is declared once. Frozen: frames share and compare them.
MergerConfig = make_dataclass("MergerConfig", [(o.name, o.kind, field(default=o.default)) for o in SCHEMA],
                              bases=(_MergerConfigMethods,), frozen=True)
MergerConfig.__module__ = __name__       # worker processes unpickle it by this name


def cycle(cfg: MergerConfig, field: str, step: int = 1, choices: tuple[str, ...] | None = None) -> MergerConfig:
    """Next (or, with step -1, previous) choice of a choice field, wrapping around; `choices` narrows the list."""
    choices = choices or CYCLES.get(field)
    if choices is None:
        raise VisageError(f"'{field}' cannot be cycled; choose one of {', '.join(CYCLES)}")
    value = getattr(cfg, field)
    i = choices.index(value) if value in choices else -step
    return replace(cfg, **{field: choices[(i + step) % len(choices)]})


def adjust(cfg: MergerConfig, field: str, delta: float) -> MergerConfig:
    """Add `delta` to a numeric field, clamped to its DeepFaceLab range (floats kept to 4 decimals)."""
    opt = OPTIONS.get(field)
    if opt is None or opt.kind not in (int, float):
        raise VisageError(f"'{field}' is not a numeric merger option")
    value = min(max(getattr(cfg, field) + delta, opt.lo), opt.hi)
    value = int(value) if opt.kind is int else round(float(value), 4)
    return replace(cfg, **{field: value})


def toggle(cfg: MergerConfig, field: str) -> MergerConfig:
    """Flip a bool field (masked_hist_match, the `z` key)."""
    if OPTIONS.get(field) is None or OPTIONS[field].kind is not bool:
        raise VisageError(f"'{field}' is not a yes/no merger option")
    return replace(cfg, **{field: not getattr(cfg, field)})

