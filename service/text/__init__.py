"""Text handling that needs no model and no torch: segmentation, language identification, the
normalization that cache keys share with it, and cutting over-long text to a token limit.  The
API process imports from here freely."""
