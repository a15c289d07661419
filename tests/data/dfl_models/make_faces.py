"""Make faces.npz: the real faces DeepFaceLab's and Visage's predictions are compared on.

Run with Visage's venv from the repository root (it extracts with Visage's extractor):
    .venv/bin/python tests/data/dfl_models/make_faces.py
Eight full_face crops of the checksummed sample photos (core/sample_media.py), stored as BGR
uint8 at 64 px (SAEHD res 64) and 96 px (Quick96), and eight whole_face crops at 256 px (XSeg,
`faces_wf256`), so both programs read the same pixels. (faces_wf256 was added later, from a newer
extractor whose full-face crops differ slightly: the stored faces64 / faces96 were kept, as the stored
references were made on them; a full re-run changes them and needs every reference.npz made anew.)
"""
from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

PHOTOS = ("obama.jpg", "biden.jpg", "obama2.jpg", "single_face.jpg", "einstein.jpg", "obama3.jpg",
          "breakingbad.jpg", "multi_face.jpg")


def main() -> None:
    from core.facelib.face_type import FaceType
    from core.sample_media import sample_path
    from mainscripts.extract.extractor import extract
    with tempfile.TemporaryDirectory() as tmp:
        frames, out = Path(tmp, "frames"), Path(tmp, "aligned")
        frames.mkdir()
        for name in PHOTOS:
            shutil.copy(sample_path(name), frames / name)
        extract(frames, out, face_type=FaceType.FULL, image_size=256, workers=1)
        faces = [cv2.imread(str(p)) for p in sorted(out.glob("*.jpg"))][:8]
        extract(frames, Path(tmp, "wf"), face_type=FaceType.WHOLE_FACE, image_size=256, workers=1)
        wf = [cv2.imread(str(p)) for p in sorted(Path(tmp, "wf").glob("*.jpg"))][:8]
    if min(len(faces), len(wf)) < 8:
        raise SystemExit(f"only {len(faces)} full and {len(wf)} whole faces were extracted")
    arrays = {f"faces{r}": np.stack([cv2.resize(f, (r, r), interpolation=cv2.INTER_AREA) for f in faces])
              for r in (64, 96)}
    arrays["faces_wf256"] = np.stack(wf)
    np.savez_compressed(Path(__file__).with_name("faces.npz"), **arrays)
    print({k: v.shape for k, v in arrays.items()})


if __name__ == "__main__":
    main()
