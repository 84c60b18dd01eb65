"""The studio's cached tests, out of the garbage collector's way.

A test of 10,000 records keeps hundreds of thousands of objects in the studio process, for as
long as the analyst works on the job. Python's cyclic collector walks every tracked object on
each full collection, and the live preview allocates enough (a row per record per keystroke) to
trigger one now and then: measured in the browser benchmark, those keystrokes took 150-250 ms
instead of ~80 ms. ``settle`` moves what the process holds into the permanent generation
(``gc.freeze``) after a test is cached, so collections no longer walk it.

What it costs: reference counting still frees a frozen object as soon as nothing refers to it
(a discarded test is mostly acyclic JSON), but garbage that holds a cycle through frozen objects
(a closed browser session, say) waits for the next ``settle``, which unfreezes and collects
first: memory a quiet studio holds a little longer, not a leak that grows. And ``settle`` runs
one full collection (tens of milliseconds per cached test) when a test arrives, not per
keystroke.
"""

from __future__ import annotations

import gc


def settle() -> None:
    """Collect once, then keep everything alive now out of later collections."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
