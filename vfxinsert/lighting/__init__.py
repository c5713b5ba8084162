"""Lighting recovery: SG lobes, lat-long maps, the initialisations, the lighting models, the tone
curves, the optimisation loop and the stage that wires them (stage.py), with its hand-off to the
renders (environment.py). Nothing is imported here, so importing one part stays cheap.
"""
