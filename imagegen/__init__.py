"""imagegen: batch image generation with Nano Banana Pro, with a resumable session journal.

Architecture (one module per concept; the pure core first, then the I/O shell):

- ``workspace``: reads combos (reference images) and catalogs (prompt files).
- ``planner``: combos x prompts -> jobs, prompt text, output folders.   (pure)
- ``sizes``, ``pricing``: size tiers, pixel sizes, prices.                (pure)
- ``retry``: the retry policy on tenacity.                                (pure)
- ``limiter``: concurrency, spacing, per-minute cap, pool pauses.
- ``journal``: writes the session's event log and JSON snapshot; ``sessionfiles`` reads them.
- ``budget``: the ``--max-cost`` reservations; ``files``, ``images``: atomic writes, image bytes.
- ``runner``: the worker pool that runs jobs through a provider; ``references``: reference
  images read once per run.
- ``provider``: the provider Protocol; ``gemini``: the google-genai adapter.
- ``emulator``: a loopback Gemini API for offline runs and tests.
- ``progress``, ``status``, ``report``: the live display, ``--status``, the contact sheet.
- ``session``, ``cli``: the command line; ``bench``: the benchmark (harness, scenarios, table).
"""

__version__ = "0.1.0"
