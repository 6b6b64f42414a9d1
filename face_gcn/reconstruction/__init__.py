"""The method's forward pass (coarse coefficients -> T_p -> texture GCNs -> refined render) and
the trained-model directory that training writes and inference, export and the demo read."""
