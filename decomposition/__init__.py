"""Lagrangian decomposition of block-structured models (Geoffrion 1974; Fisher 1981).

The driver depends only on the small interface of :mod:`meio.models.interface` -- the blocks, the
linking rows with their sense and right-hand side, and each block's contribution to each row --
never on a particular model family.
"""
