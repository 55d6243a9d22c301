"""What an operations command did, in one shape for people and for cron (``--json``)."""

from dataclasses import dataclass, field


@dataclass
class Report:
    """What a command did (or would do, on a dry run), for people and for cron."""

    command: str
    dry_run: bool
    counts: dict = field(default_factory=dict)
    items: dict = field(default_factory=dict)
    needs_attention: list = field(default_factory=list)

    def add(self, key: str, item=None, *, count: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + count
        if item is not None:
            self.items.setdefault(key, []).append(item)

    def as_dict(self) -> dict:
        return {
            "command": self.command,
            "dry_run": self.dry_run,
            "counts": self.counts,
            "items": self.items,
            "needs_attention": self.needs_attention,
        }
