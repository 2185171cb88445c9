"""Where the web process's memory goes, step by step, over an index built by bench/scale.py.

    python bench/scale.py --sizes 100000          # once: builds bench/out/scale-100000/
    python bench/web_memory.py                    # the default settings
    QA_STATE_CACHE_MB=0 python bench/web_memory.py

One process does what ``qa serve`` does before its first answer and prints its
resident memory after each step: the web chat's imports, the embedder loaded,
the index opened and 100 retrievals made (the vectors' pages they touch are
mapped from the segment files), the assistant warmed up (the generator loaded,
its prefix states made), one answer. Each line gives all of it (VmRSS), the
part mapped from files (RssFile: shared with the page cache, reclaimable) and
the process's own (RssAnon).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from common import OUT, arg_parser, table, write_json


def main(argv: list[str] | None = None) -> int:
    parser = arg_parser(__doc__)
    parser.add_argument("--index", type=Path, default=OUT / "scale-100000")
    args = parser.parse_args(argv)
    steps: dict[str, dict[str, float]] = {}
    import qa.web.app  # noqa: F401  (the web chat's imports)

    steps["imports"] = memory()
    from qa.index.store import IndexStore
    from qa.models.embedder import Embedder
    from qa.pipeline import Assistant
    from qa.settings import Settings

    settings = Settings.from_env(index_dir=args.index)
    embedder = Embedder.from_settings(settings)
    embedder.encode(["warm up"])
    steps["embedder"] = memory()
    store = IndexStore.load(settings.index_dir, embedder.name)
    assistant = Assistant(store, settings, embedder=embedder, index_dir=None)
    for number in range(100):
        assistant.retrieve(f"question {number} about the minister and the talks", 10)
    steps[f"index ({len(store):,} chunks), 100 retrievals"] = memory()
    assistant.warm_up()
    steps["warmed up (generator loaded)"] = memory()
    assistant.ask("Who leads the delegation?")
    steps["one answer"] = memory()
    print(f"state_cache_mb {settings.generator.state_cache_mb}; torch imported: {'torch' in sys.modules}")
    print(table(["after", "RSS MB", "mapped from files MB", "own MB"],
                [[name, m["VmRSS"], m["RssFile"], m["RssAnon"]] for name, m in steps.items()]))
    write_json("web_memory", {"state_cache_mb": settings.generator.state_cache_mb, "steps": steps})
    print(json.dumps(steps))
    return 0


def memory() -> dict[str, float]:
    values = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "RssFile", "RssAnon"):
            values[name] = round(int(rest.split()[0]) / 1024)
    return values


if __name__ == "__main__":
    sys.exit(main())
