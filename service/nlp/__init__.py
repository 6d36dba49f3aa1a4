"""Text processing that runs in the worker: sentence segmentation and language identification."""
