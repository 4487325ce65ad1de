"""Data for a landing zone: the synthetic generator and importers of public retail datasets."""

__all__ = ["add_data_hint"]


def add_data_hint(root: str) -> str:
    """The commands that fill the landing zone of `root`, for messages about a lake without data."""
    return (
        f"`zeos-forecast generate --lake {root} --skus 1000 --weeks 156` (synthetic) or "
        f"`zeos-forecast import oj --lake {root}` (a public dataset)"
    )
