"""SAEHD: DeepFaceLab's main model, with its options, defaults, ranges and losses.

Besides the autoencoder's own loss it has DeepFaceLab's finishing tools: the GAN (a U-Net
patch discriminator on the src reconstruction), true face (a discriminator on the DF latent
code), face and background style losses on the swap, and pretraining on a large generic
faceset (which forces DeepFaceLab's pretraining settings; switching it off restarts the
iteration count and re-initialises the inter part(s) so the model then learns the real pair).
"""
from __future__ import annotations

import numpy as np

from core import interact
from core.errors import VisageError
from core.facelib.face_type import SHORT_NAMES, TRAINABLE, face_type_from_str, face_type_name, spellings, spellings_help
from core.options import Option
from models.model_base import COMMON_OPTIONS, ModelBase

def snap_resolution(resolution: int, archi: str) -> int:
    """The resolution the network is built at: the nearest multiple of 16 (32 for -d archis)."""
    from core.nn.archis import resolution_step
    step = resolution_step(archi)
    return max(step, int(round(resolution / step) * step))


def gan_patch_default(o) -> int:
    """DeepFaceLab's default GAN patch size: the (snapped) resolution // 8, fixed at the model's first run."""
    try:
        return max(3, snap_resolution(o["resolution"], o["archi"]) // 8)
    except ValueError:              # a bad archi: settings_from_options names it in one line
        return max(3, o["resolution"] // 8)


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
    Option("gan_power", float, 0.0, "Makes the network learn the small details of the face through a "
           "discriminator. Turn it on only when the face is trained enough, with lr_dropout on and random_warp "
           "off, and do not turn it off again. Higher values risk artefacts; typical fine value is 0.1.",
           prompt="GAN power", lo=0.0, hi=5.0),
    Option("gan_patch_size", int, 16, "Patch size of the GAN's discriminator: higher is better quality and needs "
           "more memory; even the lowest setting sharpens edges. Typical fine value is resolution / 8, the default "
           "(16 for 128).", prompt="GAN patch size", lo=3, hi=640, derived=(gan_patch_default, "resolution / 8")),
    Option("gan_dims", int, 16, "Dimensions of the GAN's discriminator: higher needs more memory; even the "
           "lowest setting sharpens edges. Typical fine value is 16.", prompt="GAN dimensions", lo=4, hi=512),
    Option("true_face_power", float, 0.0, "Experimental, df archis only: a discriminator on the latent code "
           "makes the result look more like the src face. Higher is stronger; typical value is 0.01.",
           prompt="'True face' power.", lo=0.0, hi=1.0),
    Option("face_style_power", float, 0.0, "Learn the colour of the predicted face to match dst inside the "
           "mask (whole_face needs an XSeg mask). Enable only after ~10k iterations, when the face is clear; "
           "start from 0.001 and watch the history. Raises the chance of model collapse.",
           prompt="Face style power", lo=0.0, hi=100.0),
    Option("bg_style_power", float, 0.0, "Learn the area outside the mask of the predicted face to match dst "
           "(whole_face needs an XSeg mask). Makes the face more like dst; raises the chance of model collapse. "
           "Typical value is 2.0.", prompt="Background style power", lo=0.0, hi=100.0),
    Option("ct_mode", str, "none", "Colour transfer of src samples to random dst samples: none, rct, lct, mkl, "
           "idt, sot.", prompt="Color transfer for src faceset", choices=("none", "rct", "lct", "mkl", "idt", "sot")),
    Option("clipgrad", bool, False, "Gradient clipping (global norm 1.0): guards against model collapse at a "
           "small speed cost.", prompt="Enable gradient clipping"),
    Option("pretrain", bool, False, "Pretrain the model on a large set of varied faces (--pretraining-data-dir); "
           "afterwards it learns a real pair much faster. Forces random_warp n, flips y, GAN 0, lr_dropout n, "
           "styles 0, uniform_yaw y. Turning it off restarts at iteration 0 with the inter part(s) re-initialised.",
           prompt="Enable pretraining mode"),
)


def learning_rate_option(default: float) -> Option:
    """One declaration of the option; each model gives its own default (DeepFaceLab's hidden constant)."""
    return Option("learning_rate", float, default, f"Optimizer learning rate (DeepFaceLab's fixed {default:g}). "
                  "`train --find-lr` suggests one for this model and faceset.", prompt="Learning rate",
                  lo=1e-7, hi=1.0)


# What pretraining forces (DeepFaceLab's list; true face and colour transfer need the real pair too).
PRETRAIN_FORCES = dict(random_warp=False, random_src_flip=True, random_dst_flip=True, gan_power=0.0, lr_dropout="n",
                       face_style_power=0.0, bg_style_power=0.0, uniform_yaw=True, random_hsv_power=0.0,
                       true_face_power=0.0, ct_mode="none")


class SAEHDModel(ModelBase):
    CLASS_NAME = "SAEHD"
    LEARNING_RATE = 5e-5

    @classmethod
    def model_options(cls) -> list[Option]:
        return list(SAEHD_OPTIONS)

    @classmethod
    def option_schema(cls) -> list[Option]:
        common = list(COMMON_OPTIONS)
        return common[:3] + cls.model_options() + [learning_rate_option(cls.LEARNING_RATE)] + common[3:]

    def _resolve_options(self, given: dict, saved: dict, silent_start: bool) -> dict:
        """The options, plus what changed since the last run that DeepFaceLab answers by re-initialising."""
        options = super()._resolve_options(given, saved, silent_start)
        self.pretrain_just_disabled = bool(saved.get("pretrain")) and not options.get("pretrain", False)
        self.gan_changed = any(k in saved and saved[k] != options[k] for k in ("gan_patch_size", "gan_dims"))
        return options

    # --- network ---------------------------------------------------------------------------
    def network_settings(self) -> dict:
        return self.settings_from_options(self.options)

    @classmethod
    def settings_from_options(cls, o: dict) -> dict:
        """Checked, snapped settings of the network; snaps `o` in place (Quick96 fixes them).

        A classmethod so the merger can rebuild the network from saved options alone.
        """
        from core.nn.archis import parse_archi
        try:
            kind, _ = parse_archi(o["archi"])
        except ValueError as e:
            raise VisageError(f"option archi: {e}") from None
        res = snap_resolution(o["resolution"], o["archi"])
        o["resolution"] = res
        for k in ("e_dims", "d_dims", "d_mask_dims"):
            o[k] += o[k] % 2
        if kind != "df":
            o["true_face_power"] = 0.0            # DeepFaceLab offers true face for df only
        lr_dropout = o["lr_dropout"] != "n" and not o.get("pretrain")
        return dict(archi=o["archi"], kind=kind, resolution=res, face_type=face_type_name(face_type_from_str(o["face_type"])),
                    ae_dims=o["ae_dims"], e_dims=o["e_dims"], d_dims=o["d_dims"], d_mask_dims=o["d_mask_dims"],
                    lr=o.get("learning_rate", cls.LEARNING_RATE), rmsprop=not o["adabelief"], lr_dropout=lr_dropout,
                    lr_cos=500 if lr_dropout else 0,
                    opt_on_cpu=not o["models_opt_on_gpu"] or o["lr_dropout"] == "cpu")

    @classmethod
    def build_parts(cls, options: dict) -> dict:
        from core.nn.archis import build_parts
        s = cls.settings_from_options(options)
        return build_parts(s["archi"], s["resolution"], s["ae_dims"], s["e_dims"], s["d_dims"], s["d_mask_dims"])

    @classmethod
    def face_crop(cls, options: dict) -> tuple[int, str]:
        s = cls.settings_from_options(dict(options))
        return s["resolution"], s["face_type"]

    @classmethod
    def build_inference(cls, options: dict, parts: dict):
        s = cls.settings_from_options(dict(options))
        return swap_graph(s["kind"], parts, s["resolution"])

    @classmethod
    def reconstruct(cls, options: dict, parts: dict, faces):
        from core.nn.archis import forward
        kind = cls.settings_from_options(dict(options))["kind"]
        return forward(kind, parts, faces, faces, training=False)["pred_dst_dst"]   # the src half is not used

    def training_options(self) -> dict:
        """The options as training uses them: pretraining overrides DeepFaceLab's list (PRETRAIN_FORCES)."""
        return {**self.options, **PRETRAIN_FORCES} if self.options.get("pretrain") else dict(self.options)

    def build(self) -> None:
        self.net = self.network_settings()
        o = self.train_opts = self.training_options()
        if o.get("pretrain"):
            interact.log_info("Pretraining: " + ", ".join(f"{k} {v}" for k, v in PRETRAIN_FORCES.items()))
        self.parts = self.build_parts(self.options)
        self._adversarial_parts()
        every, trainable = self.generator_variables()
        self.optimizer, self._scaled_optimizer, self._step = self._optimizer_and_step("src_dst", every, trainable,
                                                                                     self.losses)
        self._d_steps = []
        for part, opt_name, loss in (("GAN", "GAN_opt", self.gan_d_loss), ("code_discriminator", "D_code_opt",
                                                                          self.code_d_loss)):
            if part in self.parts:
                variables = self.parts[part].trainable_variables
                opt, _, step = self._optimizer_and_step(opt_name, variables, variables, loss)
                self._d_steps.append((opt_name, opt, step))

    def generator_variables(self) -> tuple[list, list]:
        """(the variables the main optimizer keeps state for, those its step updates).

        The optimizer keeps state for every part (DFL), so freezing inter_AB (liae without
        random warp) and back does not orphan its moments; the step updates the trainable ones.
        """
        from core.nn.archis import part_names, trainable_parts
        kind = self.net["kind"]
        every = [v for n in part_names(kind) for v in self.parts[n].trainable_variables]
        trainable = [v for n in trainable_parts(kind, self.train_opts.get("random_warp", True))
                     for v in self.parts[n].trainable_variables]
        return every, trainable

    def _adversarial_parts(self) -> None:
        """The GAN and true-face discriminators, as parts saved beside the network's (DFL's file names)."""
        import keras
        from core.nn.discriminators import code_discriminator, unet_patch_discriminator
        o, s = self.train_opts, self.net
        if o.get("gan_power", 0.0):
            with keras.name_scope("GAN"):
                self.parts["GAN"] = unet_patch_discriminator("GAN", s["resolution"], o["gan_patch_size"], o["gan_dims"])
        if o.get("true_face_power", 0.0) and s["kind"] == "df":
            code_shape = self.parts["inter"].output.shape
            with keras.name_scope("code_discriminator"):
                self.parts["code_discriminator"] = code_discriminator("code_discriminator", int(code_shape[1]),
                                                                      int(code_shape[-1]))

    def _optimizer_and_step(self, name: str, variables: list, trainable: list, loss_fn):
        """DFL's optimizer for one set of parts (same class, lr, dropout, clipping for all), its fp16 loss-scaling
        wrapper (None in other precisions) and its compiled step."""
        from core.nn import optimizers
        from core.nn.backend import has_gpu, make_train_step, optimizer_device
        s = self.net
        opt_cls = optimizers.RMSprop if s["rmsprop"] else optimizers.AdaBelief
        # the main optimizer keeps the class's default name: its slot names are in existing saves
        kwargs = {} if name == "src_dst" else {"name": name}
        with optimizer_device(s["opt_on_cpu"]):
            opt = opt_cls(learning_rate=s["lr"], lr_dropout=0.3 if s["lr_dropout"] else 1.0, lr_cos=s["lr_cos"],
                          clipnorm=1.0 if self.options.get("clipgrad") else 0.0, **kwargs)
            opt.build(variables)
            # fp16 gradients underflow without loss scaling; the scale itself is not saved
            # (it re-adapts in a few steps), so a model can switch precision between runs
            scaled = None
            if self.precision == "fp16":
                import keras
                scaled = keras.optimizers.LossScaleOptimizer(opt, name=f"{name}_loss_scale")
                scaled.build(variables)
        # an optimizer kept on the CPU beside GPU weights cannot be one XLA cluster
        trained = {id(v) for v in trainable}
        frozen = [v for p in self.parts.values() for v in p.weights if id(v) not in trained]
        return opt, scaled, make_train_step(loss_fn, scaled or opt, trainable,
                                            fuse_update=not (s["opt_on_cpu"] and has_gpu()), frozen=frozen)

    def optimizer_parts(self) -> dict:
        return {"optimizer": self.optimizer, **{name: opt for name, opt, _ in self._d_steps}}

    def parts_to_reset(self) -> list[str]:
        reset = []
        if self.pretrain_just_disabled:
            reset = ["inter"] if self.net["kind"] == "df" else ["inter_AB", "inter_B"]
            self.iter, self.loss_history = 0, []
            interact.log_info(f"Pretraining is off: iteration reset to 0, {' and '.join(reset)} re-initialised")
        if self.gan_changed and "GAN" in self.parts:
            reset.append("GAN")
            interact.log_info("GAN patch size or dimensions changed: the GAN discriminator is re-initialised")
        return reset

    # --- samples ---------------------------------------------------------------------------
    def sample_config(self, side: str):
        from samplelib.sample_processor import SampleConfig
        o, s = self.train_opts, self.net
        return SampleConfig(resolution=s["resolution"], face_type=face_type_from_str(s["face_type"]),
                            random_warp=o.get("random_warp", True),
                            random_flip=o.get(f"random_{side}_flip", False),
                            ct_mode="none" if side == "dst" else o.get("ct_mode", "none"),
                            random_hsv_power=o.get("random_hsv_power", 0.0) if side == "src" else 0.0)

    def make_batches(self):
        from samplelib.generator import TrainingBatches
        src, dst = self.face_dirs["src"], self.face_dirs["dst"]
        if self.train_opts.get("pretrain"):
            if self.pretraining_dir is None or not self.pretraining_dir.is_dir():
                raise VisageError("pretrain is on but no pretraining faceset was given: pass --pretraining-data-dir "
                                  "(a folder of aligned faces), or train with --opt pretrain=n")
            src = dst = self.pretraining_dir
        return TrainingBatches(src, dst, self.sample_config("src"), self.sample_config("dst"),
                               self.options.get("batch_size", 4), workers=self.workers,
                               uniform_yaw=self.train_opts.get("uniform_yaw", False), held_out=self.hold_out)

    # --- losses ----------------------------------------------------------------------------
    def masked_target(self, image, mask):
        """What the reconstruction losses and the GAN compare: the image inside the softened mask
        with masked training, else the whole image."""
        from core.nn.losses import soften_mask
        return image * soften_mask(mask, self.net["resolution"]) if self.train_opts.get("masked_training", True) else image

    def side_loss(self, target, mask, em_mask, pred, pred_mask):
        """DeepFaceLab's per-side SAEHD loss, per sample."""
        from core.nn.losses import blur_out_mask, eyes_mouth_loss, mask_loss, reconstruction_loss
        o, res = self.train_opts, self.net["resolution"]
        if o.get("blur_out_mask"):
            target = blur_out_mask(target, mask, res)
        loss = reconstruction_loss(self.masked_target(target, mask), self.masked_target(pred, mask), res)
        if o.get("eyes_mouth_prio"):
            loss = loss + eyes_mouth_loss(target, pred, em_mask)
        return loss + mask_loss(mask, pred_mask)

    def style_losses(self, out, target_src_mask, target_dst):
        """Face and background style terms of the src loss (DeepFaceLab's), per sample.

        Face style decodes the swap code without its gradient, so only the decoder learns dst's
        colours. Background style compares the swap with dst outside the softened *src* target
        mask, as DeepFaceLab computes it.
        """
        import keras.ops as K
        from core.nn.archis import swap_decoder
        from core.nn.losses import dssim, mse, soften_mask, style_loss
        o, res = self.train_opts, self.net["resolution"]
        loss = 0.0
        face = o.get("face_style_power", 0.0) / 100.0
        if face:
            psd, _ = swap_decoder(self.net["kind"], self.parts)(K.stop_gradient(out["code_src_dst"]), training=True)
            loss = loss + style_loss(psd * K.stop_gradient(out["pred_src_dstm"]),
                                     K.stop_gradient(out["pred_dst_dst"] * out["pred_dst_dstm"]), res // 8,
                                     10000.0 * face)
        bg = o.get("bg_style_power", 0.0) / 100.0
        if bg:
            anti = 1.0 - K.stop_gradient(soften_mask(target_src_mask, res))
            psd, td = out["pred_src_dst"] * anti, target_dst * anti
            loss = loss + 10.0 * bg * (dssim(psd, td, max(1, int(res / 11.6))) + mse(psd, td))
        return loss

    def adversarial_g_loss(self, out, ts, ms):
        """The generator's share of the GAN and true-face games, per sample (not in the reported src loss)."""
        import keras.ops as K
        from core.nn.discriminators import logistic_loss
        from core.nn.losses import soften_mask, total_variation_mse
        o = self.train_opts
        loss = 0.0
        if "code_discriminator" in self.parts:
            loss = loss + o["true_face_power"] * logistic_loss(1.0, self.parts["code_discriminator"](out["code_src"]))
        if "GAN" in self.parts:
            patch, pixels = self.parts["GAN"](self.masked_target(out["pred_src_src"], ms))
            loss = loss + o["gan_power"] * (logistic_loss(1.0, patch) + logistic_loss(1.0, pixels))
            if o.get("masked_training", True):
                # a faint background reconstruction and smoothness keep the GAN from bright dots
                anti = 1.0 - soften_mask(ms, self.net["resolution"])
                loss = loss + 1e-6 * total_variation_mse(out["pred_src_src"])
                loss = loss + 0.02 * K.mean(K.square(out["pred_src_src"] * anti - ts * anti), axis=(1, 2, 3))
        return loss

    def losses(self, batch):
        import keras.ops as K
        from core.nn.archis import forward
        ws, ts, ms, ems, wd, td, md, emd = batch
        out = forward(self.net["kind"], self.parts, ws, wd, training=True, with_codes=True)
        src = self.side_loss(ts, ms, ems, out["pred_src_src"], out["pred_src_srcm"]) + self.style_losses(out, ms, td)
        dst = self.side_loss(td, md, emd, out["pred_dst_dst"], out["pred_dst_dstm"])
        # DFL differentiates the per-sample losses' sum over the batch (tf.gradients of a [batch]
        # vector) and reports their means; the sum's scale matters against the optimizer's epsilon
        # and clipgrad's norm
        total = K.sum(src) + K.sum(dst) + K.sum(self.adversarial_g_loss(out, ts, ms))
        return total, K.mean(src), K.mean(dst)

    def gan_d_loss(self, batch):
        """The patch discriminator's loss: real src targets against src reconstructions, both heads."""
        import keras.ops as K
        from core.nn.archis import forward
        from core.nn.discriminators import logistic_loss
        ws, ts, ms, _, wd, _, _, _ = batch
        pred = K.stop_gradient(forward(self.net["kind"], self.parts, ws, wd, training=True)["pred_src_src"])
        (real, real_px), (fake, fake_px) = (self.parts["GAN"](self.masked_target(x, ms)) for x in (ts, pred))
        loss = (logistic_loss(1.0, real) + logistic_loss(0.0, fake)) * 0.5 + \
            (logistic_loss(1.0, real_px) + logistic_loss(0.0, fake_px)) * 0.5
        return K.sum(loss), K.mean(loss)            # gradient of the batch sum, as the main loss

    def code_d_loss(self, batch):
        """The code discriminator's loss: dst codes are 'real', src codes 'fake'."""
        import keras.ops as K
        from core.nn.archis import forward
        from core.nn.discriminators import logistic_loss
        out = forward(self.net["kind"], self.parts, batch[0], batch[4], training=True, with_codes=True)
        d = self.parts["code_discriminator"]
        loss = (logistic_loss(1.0, d(K.stop_gradient(out["code_dst"]))) +
                logistic_loss(0.0, d(K.stop_gradient(out["code_src"])))) * 0.5
        return K.sum(loss), K.mean(loss)

    def train_step(self, batch) -> tuple[float, float]:
        """The autoencoder's step, then each discriminator's on the same batch (DFL's order)."""
        inputs = batch_tuple(batch)
        _, src, dst = self._step(inputs)
        if self._d_steps:
            d = {name: float(step(inputs)[1]) for name, _, step in self._d_steps}
            self.extra_losses = (d.get("GAN_opt", 0.0), d.get("D_code_opt", 0.0))
        return float(src), float(dst)

    def preview_outputs(self, src: np.ndarray, dst: np.ndarray) -> dict[str, np.ndarray]:
        from core.nn.archis import forward
        out = forward(self.net["kind"], self.parts, src, dst, training=False)
        from keras.ops import convert_to_numpy
        return {k: np.asarray(convert_to_numpy(v), np.float32) for k, v in out.items()}


def batch_tuple(batch) -> tuple:
    s, d = batch.src, batch.dst
    return (s.warped, s.target, s.mask, s.em_mask, d.warped, d.target, d.mask, d.em_mask)


def swap_graph(kind: str, parts: dict, resolution: int):
    """DeepFaceLab's swap as an inference model: DF decodes the dst code with decoder_src; LIAE
    decodes concat(AB, AB) for the face and concat(B, AB), the dst reconstruction, for the dst mask."""
    import keras
    from models.model_base import INFERENCE_INPUT, inference_model
    face = keras.Input((resolution, resolution, 3), name=INFERENCE_INPUT)
    code = parts["encoder"](face)
    if kind == "df":
        z = parts["inter"](code)
        celeb, celeb_mask = parts["decoder_src"](z)
        _, dst_mask = parts["decoder_dst"](z)
    else:
        ab, b = parts["inter_AB"](code), parts["inter_B"](code)
        celeb, celeb_mask = parts["decoder"](keras.layers.Concatenate(name="src_dst_code")([ab, ab]))
        _, dst_mask = parts["decoder"](keras.layers.Concatenate(name="dst_code")([b, ab]))
    return inference_model(face, dst_mask, celeb, celeb_mask)
