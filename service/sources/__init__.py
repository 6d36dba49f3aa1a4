"""Articles as they come: HTML pages and URLs turned into the plain text the pipeline reads.

``article`` resolves a request's ``text``, ``html`` or ``url`` into the text to summarize and the
result's ``source``; ``extract`` runs trafilatura in a child process it can kill; ``fetch`` reads
a URL through the SSRF guard; ``markup`` (on ``markup_tree``) translates HTML keeping its tags;
``errors`` holds their typed failures.
Nothing here imports torch, so the API process may use it.
"""
