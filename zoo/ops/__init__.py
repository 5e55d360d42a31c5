"""Reusable maths with no Lightning: box and anchor operations, decoding (beam search), masking."""
