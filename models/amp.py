"""AMP: DeepFaceLab's morphing model — one encoder, inter_src / inter_dst, one shared decoder.

Training decodes dst through inter_dst, and src through a per-sample random mix of
channels: a `morph_factor` fraction from inter_src, the rest from inter_dst (DFL's morph
training). At merge time a morph value 0..1 picks that fraction of the swap's channels from
inter_src(dst): 0 gives back the dst-like face, 1 the src-like one (core/nn/amp_archi.py).

What DeepFaceLab's AMP has, kept as it is: options and defaults (res 224 wf, ae 256,
inter 1024, morph_factor 0.5 in 0.1..0.5, batch 8, AdaBelief), the loss (always masked,
two-scale DSSIM, MSE, eyes/mouth 300×, mask MSE, a weak dst background term), a GAN that
judges src and dst, and the optimizer updating encoder and decoder only (the inter parts
keep their initial weights). It has no archi, masked_training, eyes_mouth_prio, true face,
style powers, random HSV or pretraining options, as DFL's AMP asks none of them.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from core.errors import VisageError
from core.facelib.face_type import FaceType, face_type_from_str, face_type_name, spellings, spellings_help
from core.options import Option
from models.saehd import SAEHD_OPTIONS, SAEHDModel, batch_tuple

_AMP_FACE_TYPES = (FaceType.FULL, FaceType.WHOLE_FACE, FaceType.HEAD)


def snap_resolution(resolution: int) -> int:
    """The resolution AMP's network is built at: rounded down to a multiple of 32, at least 64."""
    from core.nn.amp_archi import RESOLUTION_STEP
    return max(64, resolution // RESOLUTION_STEP * RESOLUTION_STEP)


def gan_patch_default(o) -> int:
    """DeepFaceLab's default GAN patch size for AMP: the snapped resolution // 8, fixed at the first run."""
    return snap_resolution(o["resolution"]) // 8

_S = {o.name: o for o in SAEHD_OPTIONS}
AMP_OPTIONS = (
    _S["random_src_flip"], _S["random_dst_flip"], replace(_S["batch_size"], default=8),
    Option("resolution", int, 224, "Face resolution: 64-640, rounded down to a multiple of 32. Higher is sharper "
           "and needs more memory and time.", prompt="Resolution", lo=64, hi=640, locked=True),
    replace(_S["face_type"], default="wf", choices=("f", "wf", "head"),
            aliases=spellings(short=True, types=_AMP_FACE_TYPES),
            help=f"Full / whole / head face. One of {spellings_help(_AMP_FACE_TYPES)}."),
    _S["ae_dims"],
    Option("inter_dims", int, 1024, "Inter dimensions: the channels of the code the decoder reads, and what the "
           "morph value slices. Should be at least the autoencoder dimensions; more is better and needs more memory.",
           prompt="Inter dimensions", lo=32, hi=2048, locked=True),
    _S["e_dims"], _S["d_dims"],
    replace(_S["d_mask_dims"], help="Mask decoder dimensions, typically decoder dimensions / 3. Raise it if you "
            "cut obstacles out of the dst masks by hand. Even numbers."),
    Option("morph_factor", float, 0.5, "Share of the code's channels that training takes from inter_src for the "
           "src faces (the rest from inter_dst). 0.5 is the usual value.", prompt="Morph factor.", lo=0.1, hi=0.5,
           locked=True),
    _S["uniform_yaw"], _S["blur_out_mask"], _S["lr_dropout"], _S["models_opt_on_gpu"], _S["random_warp"],
    _S["gan_power"],
    replace(_S["gan_patch_size"], default=28, help=_S["gan_patch_size"].help.replace("(16 for 128)", "(28 for 224)"),
            derived=(gan_patch_default, "resolution / 8")),
    _S["gan_dims"], _S["ct_mode"], _S["clipgrad"],
)


class AMPModel(SAEHDModel):
    CLASS_NAME = "AMP"
    MERGE_OPTIONS = ("morph_factor",)          # the merger asks DFL's "Morph factor" for this model only

    @classmethod
    def model_options(cls) -> list[Option]:
        return list(AMP_OPTIONS)

    @classmethod
    def settings_from_options(cls, o: dict) -> dict:
        """DFL's snapping (resolution down to a multiple of 32, even dims) and the optimizer settings."""
        o["resolution"] = snap_resolution(o["resolution"])
        for k in ("e_dims", "d_dims", "d_mask_dims"):
            o[k] += o[k] % 2
        if face_type_from_str(o["face_type"]) not in _AMP_FACE_TYPES:
            raise VisageError(f"option face_type: AMP trains f, wf or head faces, not {o['face_type']}")
        lr_dropout = o["lr_dropout"] != "n"
        return dict(kind="amp", resolution=o["resolution"], face_type=face_type_name(face_type_from_str(o["face_type"])),
                    ae_dims=o["ae_dims"], inter_dims=o["inter_dims"], e_dims=o["e_dims"], d_dims=o["d_dims"],
                    d_mask_dims=o["d_mask_dims"], morph_factor=o["morph_factor"],
                    lr=o.get("learning_rate", cls.LEARNING_RATE), rmsprop=False, lr_dropout=lr_dropout,
                    lr_cos=500 if lr_dropout else 0, opt_on_cpu=not o["models_opt_on_gpu"] or o["lr_dropout"] == "cpu")

    @classmethod
    def build_parts(cls, options: dict) -> dict:
        from core.nn.amp_archi import build_parts
        s = cls.settings_from_options(options)
        return build_parts(s["resolution"], s["ae_dims"], s["inter_dims"], s["e_dims"], s["d_dims"], s["d_mask_dims"])

    @classmethod
    def build_inference(cls, options: dict, parts: dict):
        """in_face and DFL's morph_value (shape (1,)) -> dst mask (inter_dst), the morphed face and its mask."""
        import keras
        from core.nn.amp_archi import MorphMix
        from models.model_base import INFERENCE_INPUT, MORPH_INPUT, inference_model
        res = cls.settings_from_options(dict(options))["resolution"]
        face = keras.Input((res, res, 3), name=INFERENCE_INPUT)
        morph = keras.Input(shape=(), batch_size=1, name=MORPH_INPUT)
        code = parts["encoder"](face)
        src_code, dst_code = parts["inter_src"](code), parts["inter_dst"](code)
        celeb, celeb_mask = parts["decoder"](MorphMix(name="src_dst_code")([src_code, dst_code, morph]))
        _, dst_mask = parts["decoder"](dst_code)
        return inference_model([face, morph], dst_mask, celeb, celeb_mask)

    @classmethod
    def reconstruct(cls, options: dict, parts: dict, faces):
        return parts["decoder"](parts["inter_dst"](parts["encoder"](faces, training=False)), training=False)[0]

    def generator_variables(self) -> tuple[list, list]:
        from core.nn.amp_archi import TRAINED_PARTS
        variables = [v for n in TRAINED_PARTS for v in self.parts[n].trainable_variables]
        return variables, variables

    def optimizer_parts(self) -> dict:
        """DFL's file names: src_dst_opt, and GAN_opt when the GAN is on."""
        return {"src_dst_opt": self.optimizer, **{name: opt for name, opt, _ in self._d_steps}}

    # --- training ----------------------------------------------------------------------------
    def step_inputs(self, batch) -> tuple:
        """The sampler's batch plus this iteration's morph channel masks (seeded by the iteration)."""
        from core.nn.amp_archi import morph_masks
        rng = np.random.default_rng(self.iter)
        mix = morph_masks(rng, len(batch.src.warped), self.net["inter_dims"], self.net["morph_factor"])
        return (*batch_tuple(batch), mix)

    def train_step(self, batch) -> tuple[float, float]:
        inputs = self.step_inputs(batch)
        _, src, dst = self._step(inputs)
        if self._d_steps:
            self.extra_losses = (float(self._d_steps[0][2](inputs)[1]), 0.0)
        return float(src), float(dst)

    def side_loss(self, target, mask, em_mask, pred, pred_mask):
        """DFL's AMP loss per side and sample: always masked, always both DSSIM scales and eyes/mouth."""
        from core.nn.losses import blur_out_mask, dssim, eyes_mouth_loss, mask_loss, mse
        res = self.net["resolution"]
        if self.train_opts.get("blur_out_mask"):
            target = blur_out_mask(target, mask, res)
        t, p = self.masked_target(target, mask), self.masked_target(pred, mask)
        loss = 10.0 * mse(t, p) + 5.0 * dssim(t, p, int(res / 11.6)) + 5.0 * dssim(t, p, int(res / 23.2))
        return loss + eyes_mouth_loss(target, pred, em_mask) + mask_loss(mask, pred_mask)

    def _forward(self, batch, training: bool = True) -> dict:
        from core.nn.amp_archi import forward
        ws, _, _, _, wd, _, _, _, mix = batch
        return forward(self.parts, ws, wd, mix, training=training)

    def losses(self, batch):
        import keras.ops as K
        from core.nn.discriminators import logistic_loss
        from core.nn.losses import soften_mask, total_variation_mse
        _, ts, ms, ems, _, td, md, emd, _ = batch
        out, res = self._forward(batch), self.net["resolution"]
        src = self.side_loss(ts, ms, ems, out["pred_src_src"], out["pred_src_srcm"])
        dst = self.side_loss(td, md, emd, out["pred_dst_dst"], out["pred_dst_dstm"])
        # a weak dst background term (DFL's), outside the softened dst mask
        anti_dst = 1.0 - soften_mask(md, res)
        pdd_bg = out["pred_dst_dst"] * anti_dst
        extra = 0.1 * K.mean(K.square(pdd_bg - td * anti_dst), axis=(1, 2, 3)) + 1e-6 * total_variation_mse(pdd_bg)
        if "GAN" in self.parts:
            power = self.train_opts["gan_power"]
            for pred, m in ((out["pred_src_src"], ms), (out["pred_dst_dst"], md)):
                patch, pixels = self.parts["GAN"](self.masked_target(pred, m))
                extra = extra + power * (logistic_loss(1.0, patch) + logistic_loss(1.0, pixels))
            # faint src background and smoothness keep the GAN from bright dots
            anti_src = 1.0 - soften_mask(ms, res)
            extra = extra + 1e-6 * total_variation_mse(out["pred_src_src"]) + \
                0.02 * K.mean(K.square(out["pred_src_src"] * anti_src - ts * anti_src), axis=(1, 2, 3))
        # as SAEHD: the gradient of the per-sample losses' batch sum, their means reported
        return K.sum(src) + K.sum(dst) + K.sum(extra), K.mean(src), K.mean(dst)

    def gan_d_loss(self, batch):
        """The patch discriminator: real src and dst targets against both reconstructions, 8 terms / 8 (DFL)."""
        import keras.ops as K
        from core.nn.discriminators import logistic_loss
        _, ts, ms, _, _, td, md, _, _ = batch
        out = self._forward(batch)
        loss = 0.0
        for target, pred, m in ((ts, out["pred_src_src"], ms), (td, out["pred_dst_dst"], md)):
            for x, label in ((target, 1.0), (K.stop_gradient(pred), 0.0)):
                patch, pixels = self.parts["GAN"](self.masked_target(x, m))
                loss = loss + logistic_loss(label, patch) + logistic_loss(label, pixels)
        return K.sum(loss) / 8.0, K.mean(loss) / 8.0        # gradient of the batch sum, as the main loss

    def preview_outputs(self, src: np.ndarray, dst: np.ndarray) -> dict[str, np.ndarray]:
        """Reconstructions and the swap at morph 1.0 (the merger's default); src decoded through inter_src."""
        from keras.ops import convert_to_numpy
        from core.nn.amp_archi import forward
        mix = np.ones((len(src), self.net["inter_dims"]), np.float32)
        out = forward(self.parts, src, dst, mix, training=False)
        return {k: np.asarray(convert_to_numpy(v), np.float32) for k, v in out.items()}
