"""XSeg: DeepFaceLab's trainable face segmentation, learned from the user's polygons.

Trains on every face that carries include/exclude polygons in the src and the dst set
(samplelib/xseg_sampler.py), with sigmoid cross-entropy against the polygon mask and
RMSprop lr 1e-4 with lr_dropout 0.3, as DeepFaceLab's Model_XSeg. Face type is chosen at
creation (whole face by default, as DFL); resolution defaults to DFL's fixed 256 and may be
set lower (a multiple of 64) for small machines. DFL's pretrain mode (reconstructing
images) is not offered.

`XSegPredictor` is the inference side (apply, the editor's live view, merge): rebuilt from
the saved options and weights alone through ModelFiles, under a shared lock.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from core.errors import VisageError
from core.facelib.face_type import SHORT_NAMES, TRAINABLE, face_type_from_str, spellings, spellings_help
from core.options import Option
from models.model_base import COMMON_OPTIONS, ModelBase

XSEG_OPTIONS = (
    Option("face_type", str, "wf", "Face area the masks cover; match (or exceed) the face type of the model you "
           f"merge with. A whole-face model also applies to head sets. One of {spellings_help(TRAINABLE)}.",
           prompt="Face type", choices=SHORT_NAMES, aliases=spellings(short=True, types=TRAINABLE), locked=True),
    Option("resolution", int, 256, "Mask resolution (a multiple of 64). DeepFaceLab uses 256; lower trains faster "
           "on a CPU with coarser edges.", prompt="Resolution", lo=64, hi=512, locked=True),
    Option("batch_size", int, 4, "Faces per iteration. Bigger generalises better but needs more memory.",
           prompt="Batch_size", lo=2, hi=16),
    Option("paste_occluders", bool, True, "Paste the labelled occluders (what your exclude polygons cover) of one "
           "face onto other faces in training, turned, scaled and recoloured, with the mask cut under them: the "
           "few occluders you labelled are seen at many places, so unseen ones are excluded better. Not in "
           "DeepFaceLab; n = DeepFaceLab's sampler.", prompt="Paste labelled occluders"),
)
LEARNING_RATE, LR_DROPOUT = 1e-4, 0.3
PART = "XSeg"


def snapped_resolution(res: int) -> int:
    from core.nn.xseg_archi import RES_STEP
    return max(RES_STEP, int(round(res / RES_STEP)) * RES_STEP)


def mask_logits_loss(masks, logits):
    """Per-sample sigmoid cross-entropy of the logits against the 0/1 label mask (keras.ops)."""
    import keras.ops as K
    logits = K.cast(logits, "float32")
    ce = K.maximum(logits, 0.0) - logits * masks + K.log1p(K.exp(-K.abs(logits)))
    return K.mean(ce, axis=(1, 2, 3))


class XSegModel(ModelBase):
    CLASS_NAME = "XSeg"
    SWAPS_FACES = False            # it segments faces: merge and export take it only as a mask model

    @classmethod
    def model_options(cls) -> list[Option]:
        return list(XSEG_OPTIONS)

    @classmethod
    def option_schema(cls) -> list[Option]:
        common = list(COMMON_OPTIONS)
        return common[:3] + cls.model_options() + common[3:]

    def build(self) -> None:
        from core.nn import optimizers
        from core.nn.backend import make_train_step
        from core.nn.xseg_archi import build_xseg
        self.options["resolution"] = snapped_resolution(self.options["resolution"])
        self.net = {"resolution": self.options["resolution"], "face_type": face_type_from_str(self.options["face_type"])}
        self.parts = {PART: build_xseg(self.net["resolution"])}
        variables = self.parts[PART].trainable_variables
        self.optimizer = optimizers.RMSprop(learning_rate=LEARNING_RATE, lr_dropout=LR_DROPOUT, lr_cos=0, clipnorm=0.0)
        self.optimizer.build(variables)
        self._step = make_train_step(self.losses, self.optimizer, variables,
                                     frozen=self.parts[PART].non_trainable_variables)

    def optimizer_parts(self) -> dict:
        return {"optimizer": self.optimizer}

    def make_batches(self):
        from samplelib.xseg_sampler import XSegBatches
        return XSegBatches([self.face_dirs["src"], self.face_dirs["dst"]], self.net["face_type"], self.net["resolution"],
                           self.options["batch_size"], seed=self.iter,
                           paste_occluders=self.options["paste_occluders"])

    def losses(self, batch):
        import keras.ops as K
        images, masks = batch
        loss = K.mean(mask_logits_loss(masks, self.parts[PART](images, training=True)))
        return loss, loss

    @staticmethod
    def step_inputs(batch) -> tuple:
        return (batch.images, batch.masks)

    def train_step(self, batch) -> tuple[float, float]:
        loss, _ = self._step(self.step_inputs(batch))
        return float(loss), float(loss)

    def predict(self, images: np.ndarray) -> np.ndarray:
        import keras.ops as K
        logits = self.parts[PART](np.asarray(images, np.float32), training=False)
        return np.asarray(K.convert_to_numpy(K.sigmoid(K.cast(logits, "float32"))), np.float32)

    def preview_outputs(self, src: np.ndarray, dst: np.ndarray) -> dict[str, np.ndarray]:
        return {"mask": self.predict(src)}

    def preview_masks(self, src: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The label masks and the predicted masks of the preview faces `src` (drawn by mainscripts/xseg/xseg_preview.py)."""
        return self.batches.preview_batch(len(src)).src.mask, self.predict(src)


class XSegPredictor:
    """A trained XSeg model for inference: `masks(crops)` and `mask_for_face(aligned face)`."""

    def __init__(self, model_dir: str | Path, force_name: str | None = None):
        from core.nn.backend import make_predict
        from core.nn.xseg_archi import build_xseg
        from models.model_files import ModelFiles, list_models, pick_model
        model_dir = Path(model_dir)
        names = list_models(model_dir, XSegModel.CLASS_NAME) if model_dir.is_dir() else []
        if not names:
            raise VisageError(f"no trained XSeg model in {model_dir}; train one first (5.XSeg) train: "
                              "`train --model XSeg`)")
        name = pick_model(model_dir, XSegModel.CLASS_NAME, force_name)
        if name not in names:
            raise VisageError(f"no XSeg model named '{name}' in {model_dir}; saved models: {', '.join(names)}")
        files = ModelFiles(model_dir, name, XSegModel.CLASS_NAME)
        self.lock = files.lock(exclusive=False, what="apply")
        generation = files.load_generation()
        if generation is None:
            raise VisageError(f"XSeg model {name} in {model_dir} has no complete save; train it first")
        options = XSegModel.saved_options(generation.data, files.data_path)
        self.resolution = snapped_resolution(options["resolution"])
        self.face_type = face_type_from_str(options["face_type"])
        self.iteration = generation.data.get("iter", 0)
        net = build_xseg(self.resolution)
        missing = files.load_parts({PART: net})
        if missing:
            raise VisageError(f"XSeg model {name} has no saved weights; train it first")
        self.title = f"{name}_XSeg"
        import keras.ops as K
        self._predict = make_predict(lambda x: K.sigmoid(K.cast(net(x, training=False), "float32")))

    def masks(self, crops: np.ndarray) -> np.ndarray:
        """(N, res, res, 1) float masks in [0, 1] for (N, res, res, 3) BGR crops in [0, 1] of the model's face type."""
        out = np.asarray(self._predict(np.asarray(crops, np.float32)), np.float32)
        if not np.isfinite(out).all():
            raise VisageError(f"XSeg model {self.title} predicts values that are not finite: its weights are damaged")
        return out

    def mask_for_face(self, face_bgr: np.ndarray, meta=None) -> np.ndarray:
        """float32 (H, W) soft mask in the aligned face's own pixels: the face re-cropped to the model's face type
        and resolution through the one crop function, predicted, and warped back."""
        import cv2
        from samplelib.sample import sample_from_meta
        from samplelib.sample_processor import crop_matrix, resample
        h, w = face_bgr.shape[:2]
        mat = crop_matrix(sample_from_meta("face", meta, w), self.face_type, self.resolution)
        crop = resample(face_bgr, mat, self.resolution, border_replicate=True).astype(np.float32) / 255.0
        m = self.masks(np.clip(crop, 0, 1)[None])[0, ..., 0]
        return cv2.warpAffine(m, mat, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)

    def close(self) -> None:
        self.lock.release()
