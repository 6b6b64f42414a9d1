"""Evaluation (paper section 5.2): masked L1 / PSNR / SSIM between inputs and renders, identity
cosine similarity with pluggable recognizers, and the EMD between same- and different-identity
similarity distributions.

  face_gcn.evaluation.metrics      NumPy metrics (no TensorFlow import)
  face_gcn.evaluation.recognizers  identity recognizers loaded by path (SavedModel, ONNX, FaceNet)
  face_gcn.evaluation.report       a results folder -> JSON and Markdown (`face-gcn evaluate`)
"""
