"""vfxinsert: insert CG objects into plates with lighting recovered by diffusion-guided inverse rendering."""
__version__ = "0.1.0"
