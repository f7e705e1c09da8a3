"""Benchmarks of the framework on real data: the paper's protocol (``protocol``), the few-shot
protocol (``fewshot``), the tasks (``tasks``: the paper's splits and merged multi-modal tasks) and
the datasets (``datasets``: Fashion-MNIST from the Debian package, MNIST, CIFAR-10, image folders).

``imprint bench`` (``imprint_core.cli.bench``) runs them; results are JSON/CSV/Markdown tables.
"""

from .protocol import (
    CHUNK,
    DEFAULT_PRESETS,
    MODELS,
    PROBE,
    PROBE_C,
    BenchConfig,
    BenchResult,
    Method,
    aggregate,
    default_cache_dir,
    embed_cached,
    fit_and_score,
    format_table,
    load_config,
    parse_grid,
    preset_methods,
    preset_names,
    run_bench,
    subset_rows,
    unique_methods,
    write_outputs,
)
