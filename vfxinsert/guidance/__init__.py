"""Diffusion guidance (DiPIR sections 3.3-3.4): a Stable Diffusion model judges the composite.

loading.py resolves and loads a checkpoint, model.py wraps it (with its LoRA), personalise.py trains
the LoRA on the plate, objectives.py holds the losses (one mapping from ``[guidance] method`` to its
class), stage.py builds a shot's objective. Nothing is imported here, so importing one part stays cheap.
"""
