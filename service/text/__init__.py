"""Text handling that needs no model and no torch: segmentation, language identification and
the normalization that cache keys share with it.  The API process imports from here freely."""
