"""Quick96: DeepFaceLab's no-questions model — 96 px full face, DF-UD, small dims.

Fixed: resolution 96, full_face, archi df-ud, dims 128/64/64/16, masked training, RMSprop
lr 2e-4 with lr_dropout 0.3, batch 4, no flips, random warp on, scale jitter ±5 %, losses
weighted by the plainly blurred mask. Every third iteration it
retrains on the previous batch's unwarped faces, as DeepFaceLab's Quick96 does. Only the
common options (target iteration, autobackup, preview history, precision, validation faces)
and `learning_rate` (default the fixed 2e-4) can be set, by flag or config file; nothing is asked.
"""
from __future__ import annotations

from core.options import Option
from models.model_base import COMMON_OPTIONS
from models.saehd import SAEHDModel, learning_rate_option

FIXED = dict(batch_size=4, random_warp=True, random_src_flip=False, random_dst_flip=False, masked_training=True,
             eyes_mouth_prio=False, blur_out_mask=False, uniform_yaw=False, ct_mode="none", random_hsv_power=0.0,
             clipgrad=False)


class Quick96Model(SAEHDModel):
    CLASS_NAME = "Quick96"
    ASKS_OPTIONS = False
    LEARNING_RATE = 2e-4

    @classmethod
    def option_schema(cls) -> list[Option]:
        return list(COMMON_OPTIONS) + [learning_rate_option(cls.LEARNING_RATE)]

    @classmethod
    def settings_from_options(cls, o: dict) -> dict:
        o.update(FIXED)
        return dict(archi="df-ud", kind="df", resolution=96, face_type="full_face", ae_dims=128, e_dims=64,
                    d_dims=64, d_mask_dims=16, lr=o.get("learning_rate", cls.LEARNING_RATE), rmsprop=True, lr_dropout=True, lr_cos=0,
                    opt_on_cpu=False)

    def masked_target(self, image, mask):
        """Quick96 weights its losses by the mask blurred with σ res//32 as it is: unlike SAEHD's
        (clipped at 0.5 and doubled) it fades inside the face edge too, as DeepFaceLab's Quick96 does."""
        from core.nn.losses import blur_mask
        return image * blur_mask(mask, max(1, self.net["resolution"] // 32))

    def sample_config(self, side: str):
        """SAEHD's samples with DeepFaceLab's default scale jitter (±5 %, SAEHD uses ±15 %)."""
        from dataclasses import replace
        return replace(super().sample_config(side), scale_range=(-0.05, 0.05))

    def train_step(self, batch) -> tuple[float, float]:
        previous = getattr(self, "_last_batch", None)
        self._last_batch = batch
        if previous is not None and self.iter % 3 == 0:
            s, d = previous.src, previous.dst
            batch_in = (s.target, s.target, s.mask, s.em_mask, d.target, d.target, d.mask, d.em_mask)
        else:
            from models.saehd import batch_tuple
            batch_in = batch_tuple(batch)
        _, src, dst = self._step(batch_in)
        return float(src), float(dst)
