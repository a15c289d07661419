"""SAEHD: DeepFaceLab's main model, with its options, defaults, ranges and losses.

GAN, true face, style powers and pretrain come with a later issue and are not offered.
"""
from __future__ import annotations

import numpy as np

from core.errors import VisageError
from core.facelib.face_type import SHORT_NAMES, TRAINABLE, face_type_from_str, face_type_name, spellings, spellings_help
from core.options import Option
from models.model_base import COMMON_OPTIONS, ModelBase

SAEHD_OPTIONS = (
    Option("random_src_flip", bool, False, "Random horizontal flips of src faces: more angles covered, "
           "but the face looks less like the real person (faces are not symmetric).", prompt="Flip SRC faces randomly"),
    Option("random_dst_flip", bool, True, "Random horizontal flips of dst faces; makes src generalise better "
           "when src flips are off.", prompt="Flip DST faces randomly"),
    Option("batch_size", int, 4, "Faces per iteration. Bigger generalises better but needs more memory.",
           prompt="Batch_size", lo=1, hi=256),
    Option("resolution", int, 128, "Face resolution: 64-640, rounded to a multiple of 16 (32 for -d archis). "
           "Higher is sharper and slower.", prompt="Resolution", lo=64, hi=640, locked=True),
    Option("face_type", str, "f", "Half / mid-half / full / whole / head face. Whole face covers the forehead; "
           f"head the whole head. One of {spellings_help(TRAINABLE)}.", prompt="Face type", choices=SHORT_NAMES,
           aliases=spellings(short=True, types=TRAINABLE), locked=True),
    Option("archi", str, "liae-ud", "df or liae, plus options: u (better likeness), d (double resolution at the "
           "same cost), t (more src-like), c (cos activation). E.g. df-ud, liae-udt.",
           prompt="AE architecture", locked=True),
    Option("ae_dims", int, 256, "Autoencoder dimensions: all face information is packed into them.",
           prompt="AutoEncoder dimensions", lo=32, hi=1024, locked=True),
    Option("e_dims", int, 64, "Encoder dimensions: more recognises more facial features. Even numbers.",
           prompt="Encoder dimensions", lo=16, hi=256, locked=True),
    Option("d_dims", int, 64, "Decoder dimensions: more gives more detail. Even numbers.",
           prompt="Decoder dimensions", lo=16, hi=256, locked=True),
    Option("d_mask_dims", int, 22, "Mask decoder dimensions. Even numbers.", prompt="Decoder mask dimensions",
           lo=16, hi=256, locked=True),
    Option("masked_training", bool, True, "Train only inside the face mask (whole_face/head: the background is "
           "ignored, so the face gets all the capacity).", prompt="Masked training"),
    Option("eyes_mouth_prio", bool, False, "Weight eyes and mouth more: sharper eyes and teeth.",
           prompt="Eyes and mouth priority"),
    Option("uniform_yaw", bool, False, "Draw faces evenly over head turn angles, so profiles are learned as well "
           "as frontal faces.", prompt="Uniform yaw distribution of samples"),
    Option("blur_out_mask", bool, False, "Blur the area outside the mask in training targets, so the model "
           "spends nothing on the background.", prompt="Blur out mask"),
    Option("models_opt_on_gpu", bool, True, "Keep optimizer state on the GPU (faster) rather than the CPU "
           "(more room for the model). No effect without a GPU.", prompt="Place models and optimizer on GPU"),
    Option("adabelief", bool, True, "AdaBelief optimizer: better generalisation; off = RMSprop.",
           prompt="Use AdaBelief optimizer?"),
    Option("lr_dropout", str, "n", "Learning-rate dropout: use once the faces are sharp, for extra detail. "
           "cpu = same, with its state on the CPU.", prompt="Use learning rate dropout", choices=("n", "y", "cpu")),
    Option("random_warp", bool, True, "Random warps of the inputs so the model generalises; turn off late in "
           "training for detail.", prompt="Enable random warp of samples"),
    Option("random_hsv_power", float, 0.0, "Random hue/saturation/value shifts of src inputs (0..0.3), for "
           "more stable colour in the result.", prompt="Random hue/saturation/light intensity", lo=0.0, hi=0.3),
    Option("ct_mode", str, "none", "Colour transfer of src samples to random dst samples: none, rct, lct, mkl, "
           "idt, sot.", prompt="Color transfer for src faceset", choices=("none", "rct", "lct", "mkl", "idt", "sot")),
    Option("clipgrad", bool, False, "Gradient clipping (global norm 1.0): guards against model collapse at a "
           "small speed cost.", prompt="Enable gradient clipping"),
)

class SAEHDModel(ModelBase):
    CLASS_NAME = "SAEHD"
    LEARNING_RATE = 5e-5

    @classmethod
    def model_options(cls) -> list[Option]:
        return list(SAEHD_OPTIONS)

    @classmethod
    def option_schema(cls) -> list[Option]:
        common = list(COMMON_OPTIONS)
        return common[:3] + cls.model_options() + common[3:]

    # --- network ---------------------------------------------------------------------------
    def network_settings(self) -> dict:
        return self.settings_from_options(self.options)

    @classmethod
    def settings_from_options(cls, o: dict) -> dict:
        """Checked, snapped settings of the network; snaps `o` in place (Quick96 fixes them).

        A classmethod so the merger can rebuild the network from saved options alone.
        """
        from core.nn.archis import parse_archi, resolution_step
        try:
            kind, _ = parse_archi(o["archi"])
        except ValueError as e:
            raise VisageError(f"option archi: {e}") from None
        step = resolution_step(o["archi"])
        res = max(step, int(round(o["resolution"] / step) * step))
        o["resolution"] = res
        for k in ("e_dims", "d_dims", "d_mask_dims"):
            o[k] += o[k] % 2
        return dict(archi=o["archi"], kind=kind, resolution=res, face_type=face_type_name(face_type_from_str(o["face_type"])),
                    ae_dims=o["ae_dims"], e_dims=o["e_dims"], d_dims=o["d_dims"], d_mask_dims=o["d_mask_dims"],
                    lr=cls.LEARNING_RATE, rmsprop=not o["adabelief"], lr_dropout=o["lr_dropout"] != "n",
                    lr_cos=500 if o["lr_dropout"] != "n" else 0,
                    opt_on_cpu=not o["models_opt_on_gpu"] or o["lr_dropout"] == "cpu")

    def build(self) -> None:
        from core.nn import optimizers
        from core.nn.archis import build_parts, trainable_parts
        from core.nn.backend import has_gpu, make_train_step, optimizer_device
        s = self.net = self.network_settings()
        self.parts = build_parts(s["archi"], s["resolution"], s["ae_dims"], s["e_dims"], s["d_dims"], s["d_mask_dims"])
        names = trainable_parts(s["kind"], self.options["random_warp"])
        variables = [v for n in names for v in self.parts[n].trainable_variables]
        opt_cls = optimizers.RMSprop if s["rmsprop"] else optimizers.AdaBelief
        with optimizer_device(s["opt_on_cpu"]):
            self.optimizer = opt_cls(learning_rate=s["lr"], lr_dropout=0.3 if s["lr_dropout"] else 1.0,
                                     lr_cos=s["lr_cos"], clipnorm=1.0 if self.options.get("clipgrad") else 0.0)
            self.optimizer.build(variables)
            # fp16 gradients underflow without loss scaling; the scale itself is not saved
            # (it re-adapts in a few steps), so a model can switch precision between runs
            self._scaled_optimizer = None
            if self.precision == "fp16":
                import keras
                self._scaled_optimizer = keras.optimizers.LossScaleOptimizer(self.optimizer)
                self._scaled_optimizer.build(variables)
        # an optimizer kept on the CPU beside GPU weights cannot be one XLA cluster
        trained = {id(v) for v in variables}
        self._step = make_train_step(self.losses, self._scaled_optimizer or self.optimizer, variables,
                                     fuse_update=not (s["opt_on_cpu"] and has_gpu()),
                                     frozen=[v for p in self.parts.values() for v in p.weights if id(v) not in trained])

    def optimizer_arrays(self) -> dict[str, np.ndarray]:
        from core.nn.optimizers import optimizer_state
        return optimizer_state(self.optimizer)

    def load_optimizer_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        from core.nn.optimizers import load_optimizer_state
        load_optimizer_state(self.optimizer, arrays)

    # --- samples ---------------------------------------------------------------------------
    def sample_config(self, side: str):
        from samplelib.sample_processor import SampleConfig
        o, s = self.options, self.net
        return SampleConfig(resolution=s["resolution"], face_type=face_type_from_str(s["face_type"]),
                            random_warp=o.get("random_warp", True),
                            random_flip=o.get(f"random_{side}_flip", False),
                            ct_mode="none" if side == "dst" else o.get("ct_mode", "none"),
                            random_hsv_power=o.get("random_hsv_power", 0.0) if side == "src" else 0.0)

    def make_batches(self):
        from samplelib.generator import TrainingBatches
        return TrainingBatches(self.src_dir, self.dst_dir, self.sample_config("src"), self.sample_config("dst"),
                               self.options.get("batch_size", 4), workers=self.workers,
                               uniform_yaw=self.options.get("uniform_yaw", False))

    # --- losses ----------------------------------------------------------------------------
    def side_loss(self, target, mask, em_mask, pred, pred_mask):
        """DeepFaceLab's per-side SAEHD loss, per sample."""
        from core.nn.losses import blur_out_mask, eyes_mouth_loss, mask_loss, reconstruction_loss, soften_mask
        o, res = self.options, self.net["resolution"]
        soft = soften_mask(mask, res)
        if o.get("blur_out_mask"):
            target = blur_out_mask(target, mask, res)
        if o.get("masked_training", True):
            loss = reconstruction_loss(target * soft, pred * soft, res)
        else:
            loss = reconstruction_loss(target, pred, res)
        if o.get("eyes_mouth_prio"):
            loss = loss + eyes_mouth_loss(target, pred, em_mask)
        return loss + mask_loss(mask, pred_mask)

    def losses(self, batch):
        import keras.ops as K
        from core.nn.archis import forward
        ws, ts, ms, ems, wd, td, md, emd = batch
        out = forward(self.net["kind"], self.parts, ws, wd, training=True)
        src = K.mean(self.side_loss(ts, ms, ems, out["pred_src_src"], out["pred_src_srcm"]))
        dst = K.mean(self.side_loss(td, md, emd, out["pred_dst_dst"], out["pred_dst_dstm"]))
        return src + dst, src, dst

    def train_step(self, batch) -> tuple[float, float]:
        _, src, dst = self._step(batch_tuple(batch))
        return float(src), float(dst)

    def preview_outputs(self, src: np.ndarray, dst: np.ndarray) -> dict[str, np.ndarray]:
        from core.nn.archis import forward
        out = forward(self.net["kind"], self.parts, src, dst, training=False)
        from keras.ops import convert_to_numpy
        return {k: np.asarray(convert_to_numpy(v), np.float32) for k, v in out.items()}


def batch_tuple(batch) -> tuple:
    s, d = batch.src, batch.dst
    return (s.warped, s.target, s.mask, s.em_mask, d.warped, d.target, d.mask, d.em_mask)
