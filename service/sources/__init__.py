"""Articles as they come: HTML pages and URLs turned into the plain text the pipeline reads.

``extract`` runs trafilatura in a child process it can kill, ``fetch`` reads a URL through the
SSRF guard, ``markup`` translates HTML keeping its tags, ``errors`` holds their typed failures.
Nothing here imports torch, so the API process may use it.
"""
