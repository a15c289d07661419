"""XSeg: DeepFaceLab's trainable face segmentation, learned from the user's polygons.

Trains on every face that carries include/exclude polygons in the src and the dst set
(samplelib/xseg_sampler.py), with sigmoid cross-entropy against the polygon mask and
RMSprop lr 1e-4 with lr_dropout 0.3, as DeepFaceLab's Model_XSeg. Face type is chosen at
creation (whole face by default, as DFL); resolution defaults to DFL's fixed 256 and may be
set lower (a multiple of 64) for small machines.

Pretrain (DFL's "Enable pretraining mode"): the network learns to redraw faces of the
`--pretraining-data-dir` set, no polygons needed (samplelib/xseg_pretrain_sampler.py: the
warped colour face in, its greyscale out), through the same layers with every skip
connection zeroed, so the encoder, the dense bottleneck and the decoder all learn; the loss
is DFL's 5·DSSIM(res/11.6) + 5·DSSIM(res/23.2) + 10·MSE of the sigmoid output. Switching it off
keeps every weight and the optimizer state and restarts at iteration 0 on the labelled
faces, as DFL does. DeepFaceLab's XSeg models import with `util --import-dfl-model`
(mainscripts/dfl_xseg_import.py).

`XSegPredictor` is the inference side (apply, the editor's live view, merge): rebuilt from
the saved options and weights alone through ModelFiles, under a shared lock.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from core import interact
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
    Option("pretrain", bool, False, "Pretrain on a large set of varied faces (--pretraining-data-dir, no polygons "
           "needed): the network learns to redraw each face through its bottleneck, then learns your labels "
           "faster. Turning it off restarts at iteration 0 with the pretrained weights.",
           prompt="Enable pretraining mode"),
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


def make_optimizer():
    """XSeg's optimizer, as DFL's: RMSprop lr 1e-4, lr_dropout 0.3 (the import builds it too)."""
    from core.nn import optimizers
    return optimizers.RMSprop(learning_rate=LEARNING_RATE, lr_dropout=LR_DROPOUT, lr_cos=0, clipnorm=0.0)


def pretrain_loss(targets, pred, resolution: int):
    """DFL's XSeg pretraining loss per sample: 5·DSSIM at windows res/11.6 and res/23.2, plus 10·MSE."""
    from core.nn.losses import dssim, mse
    loss = 10.0 * mse(targets, pred)
    for size in (int(resolution / 11.6), int(resolution / 23.2)):
        loss = loss + 5.0 * dssim(targets, pred, max(1, size))
    return loss


def legacy_weights(files, net) -> list[np.ndarray] | None:
    """A save from before FRN's learned epsilon (three weights per FRN, not DFL's four): its arrays with
    each epsilon at DFL's initial 1e-6, in `net`'s order; None for any other save."""
    arrays = files.load_arrays(PART) if files.generation else None
    eps = [v.path.endswith("/eps") for v in net.weights]
    if arrays is None or len(arrays) != len(eps) - sum(eps):
        return None
    old = iter(arrays[k] for k in sorted(arrays))
    out = [np.full((1,), 1e-6, np.float32) if e else next(old) for e in eps]
    if [a.shape for a in out] != [tuple(v.shape) for v in net.weights]:
        return None
    return out


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

    @classmethod
    def build_parts(cls, options: dict) -> dict:
        from core.nn.xseg_archi import build_xseg
        return {PART: build_xseg(snapped_resolution(options["resolution"]), pretrain=bool(options.get("pretrain")))}

    def _resolve_options(self, given: dict, saved: dict, silent_start: bool) -> dict:
        options = super()._resolve_options(given, saved, silent_start)
        self.pretrain_just_disabled = bool(saved.get("pretrain")) and not options["pretrain"]
        return options

    def parts_to_reset(self) -> list[str]:
        """Nothing is re-initialised; after pretraining DFL only restarts the iteration count."""
        if self.pretrain_just_disabled:
            self.iter, self.loss_history = 0, []
            interact.log_info("Pretraining is off: iteration reset to 0, training on the labelled faces "
                              "from the pretrained weights")
        return []

    def _load_weights(self) -> list[str]:
        old = legacy_weights(self.files, self.parts[PART])
        if old is None:
            return super()._load_weights()
        from core.nn.optimizers import load_optimizer_state
        self.parts[PART].set_weights(old)
        state = self.files.load_arrays("optimizer")
        if state is not None:                 # every slot but the epsilons'
            load_optimizer_state(self.optimizer, state, strict=False)
        interact.log_info("XSeg model saved before FRN's learned epsilon (DeepFaceLab's layout): its epsilons "
                          "start at 1e-6, as they did; the next save is in the new layout")
        return []

    def build(self) -> None:
        from core.nn.backend import make_train_step
        self.options["resolution"] = snapped_resolution(self.options["resolution"])
        self.net = {"resolution": self.options["resolution"], "face_type": face_type_from_str(self.options["face_type"])}
        self.parts = self.build_parts(self.options)
        variables = self.parts[PART].trainable_variables
        self.optimizer = make_optimizer()
        self.optimizer.build(variables)
        self._step = make_train_step(self.losses, self.optimizer, variables,
                                     frozen=self.parts[PART].non_trainable_variables)

    def optimizer_parts(self) -> dict:
        return {"optimizer": self.optimizer}

    def make_batches(self):
        if self.options["pretrain"]:
            from samplelib.xseg_pretrain_sampler import XSegPretrainBatches
            if self.pretraining_dir is None or not self.pretraining_dir.is_dir():
                raise VisageError("pretrain is on but no pretraining faceset was given: pass --pretraining-data-dir "
                                  "(a folder of aligned faces), or train with --opt pretrain=n")
            return XSegPretrainBatches(self.pretraining_dir, self.net["face_type"], self.net["resolution"],
                                       self.options["batch_size"], workers=self.workers, seed=self.iter)
        from samplelib.xseg_sampler import XSegBatches
        return XSegBatches([self.face_dirs["src"], self.face_dirs["dst"]], self.net["face_type"], self.net["resolution"],
                           self.options["batch_size"], seed=self.iter,
                           paste_occluders=self.options["paste_occluders"])

    def losses(self, batch):
        import keras.ops as K
        images, targets = batch
        logits = self.parts[PART](images, training=True)
        if self.options["pretrain"]:
            loss = K.mean(pretrain_loss(targets, K.sigmoid(K.cast(logits, "float32")), self.net["resolution"]))
        else:
            loss = K.mean(mask_logits_loss(targets, logits))
        return loss, loss

    def step_inputs(self, batch) -> tuple:
        """(images, what they are compared with: the label masks, or with pretrain their greyscale)."""
        return (batch.images, batch.targets if self.options["pretrain"] else batch.masks)

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
        """The label masks and the predicted masks of the preview faces `src` (drawn by mainscripts/xseg/xseg_preview.py);
        with pretrain the greyscale faces and the network's redrawing of them."""
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
        old = legacy_weights(files, net)
        if old is not None:
            net.set_weights(old)
        if old is None and files.load_parts({PART: net}):
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
