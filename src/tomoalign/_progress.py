"""Progress bars for the signal layer (the algorithms only call a ``progress(k)`` callback)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["progress_bar"]


@contextmanager
def progress_bar(show: bool, total: int, desc: str) -> Iterator[Callable[[int], None] | None]:
    """Yield a tqdm-style ``update(k)`` callback (or None when ``show`` is false).

    The bar is filled and closed on exit, also when a method reports fewer steps than
    ``total`` (e.g. neighbour pairs rather than projections).
    """
    if not show:
        yield None
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=desc, unit="step")

    def update(done: int) -> None:
        bar.update(min(int(done), bar.total - bar.n))

    try:
        yield update
        bar.update(bar.total - bar.n)
    finally:
        bar.close()
