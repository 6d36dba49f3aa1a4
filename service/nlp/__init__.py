"""The models and nothing else: loading, the transformers and CTranslate2 engines, translation,
summarization and the inference scheduler.  The only package that imports torch; it runs in the
worker."""
