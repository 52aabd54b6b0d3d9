"""imagegen: batch image generation on one runner and one durable journal, whatever the source.

Architecture (one module per concept; three seams carry every extension):

- ``model``: Job, JobState, Attempt, typed journal events and the fold: the shared data.
- ``sources/``: job sources (the seam): combos x catalogs (seed 003), shot folders (seed 000),
  chapter images (seeds 001/002), YAML imagery specs (seed 004). Each plans typed jobs that
  name their own output and labels; a registry maps ``imagegen SOURCE`` to its module.
- ``providers/``: providers (the seam): Gemini, Vertex AI, OpenAI, fal, each a light
  capability/price module and an adapter that alone imports its SDK (Gemini's in two:
  ``client`` and ``errors``).
- ``executors/``: executors (the seam): the online pool (``pool``, with ``limiter`` and
  ``budget``) and the Batch API (``batch``, with ``batch_input``, ``batch_results`` and the
  pure ``batch_plan``); both emit the same journal events (``recording``); ``uploads`` sends
  reference images by URI once uploaded to a provider's file store (``providers/batch``).
- ``journal/``: the event log and snapshot (``writer``), reading (``reader``), the JSON
  (``codec``, format 1 still read), the session lock and owner (``lock``).
- ``retry``: the whole retry policy; ``outputs``: names, durable saves, adoption, the spool;
  ``references``: reference images checked at planning and cached; ``recovery``: resume/retry;
  ``pricing``: what a job is expected to cost before it runs (dry run, "to go").
- ``secrets``: keys redacted from everything written; ``files``, ``images``: file and image bytes.
- ``progress``, ``status``, ``report/``: the live display, ``--status``, the contact sheet;
  ``batchview``: a batch session's batches as they show them.
- ``session``, ``cli/``: the shell; ``emulator/``: the loopback service; ``bench/``: the benchmark.
"""

__version__ = "0.2.0"
