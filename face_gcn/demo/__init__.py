"""The built-in demo: the whole method on the generated morphable model (face-gcn demo)."""
