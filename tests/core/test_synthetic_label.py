"""Merged frames and videos carry the synthetic-media label where standard tools read it."""

import cv2
import numpy as np
import pytest

from core.errors import VisageError
from core.sample_media import sample_path
from core.synthetic_label import DIGITAL_SOURCE_TYPE, is_labelled_png, label_png, read_png_text, video_metadata


@pytest.fixture(scope="module")
def png():
    img = cv2.imread(str(sample_path("single_face.jpg")))
    return cv2.imencode(".png", img)[1].tobytes(), img


def test_label_is_read_back_and_pixels_are_untouched(png):
    data, img = png
    labelled = label_png(data)
    assert not is_labelled_png(data) and is_labelled_png(labelled)
    assert read_png_text(labelled)["synthetic_media"] == "true"
    decoded = cv2.imdecode(np.frombuffer(labelled, np.uint8), cv2.IMREAD_COLOR)
    assert np.array_equal(decoded, img)


def test_labelling_twice_keeps_one_set_of_chunks(png):
    twice = label_png(label_png(png[0]))
    assert twice == label_png(png[0])


def test_pillow_sees_the_label(png):
    pil = pytest.importorskip("PIL.Image")
    import io
    info = pil.open(io.BytesIO(label_png(png[0]))).info
    assert info["DigitalSourceType"] == DIGITAL_SOURCE_TYPE


def test_not_png_and_truncated_png_are_refused(png):
    with pytest.raises(VisageError, match="not a PNG"):
        label_png(b"GIF89a....")
    with pytest.raises(VisageError, match="truncated"):
        label_png(png[0][:200])


def test_video_label_survives_in_the_container(tmp_path):
    from core.video import probe, video_from_sequence
    frames = tmp_path / "frames"
    frames.mkdir()
    img = cv2.imread(str(sample_path("single_face.jpg")))
    for i in range(5):
        cv2.imwrite(str(frames / f"{i:05d}.png"), img)
    out = video_from_sequence(frames, tmp_path / "out.mp4", fps=5, include_audio=False, metadata=video_metadata())
    tags = {k.lower(): v for k, v in probe(out, count=False).tags.items()}
    assert tags.get("synthetic_media") == "true"
    assert tags.get("digital_source_type") == DIGITAL_SOURCE_TYPE
