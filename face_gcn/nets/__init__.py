"""Networks: the coarse regressor (ResNet-50 or Deng's frozen graph), FaceNet, the texture GCNs,
the critic and the refiner baselines. Import the submodules directly (each builds on Keras)."""
