"""Measuring a merged swap (`main.py evaluate`): one small module per family of figures.

identity (whose face is it), fidelity (does it keep the dst's expression and pose),
stability (flicker and landmark jitter over time), regions + sharpness_seam (the face area,
its sharpness and the step at the mask's edge), reconstruction (how well the model redraws
faces it is given) and report (evaluate.json and the one-page evaluate.png). Every figure is
defined in README.md, "Evaluating a swap". NumPy/OpenCV only, except identity (dlib) and
landmarks (the face mesh) through core/facelib, and reconstruction (the model).
"""
