"""Per-photo reconstruction without a trained network: coarse_fit (analysis-by-synthesis fit of
the 257 coefficients), refine (test-time GCN Refiner + Combiner texture refinement), outputs
(meshes, overlay, renders and JSON of one photo)."""
