"""The configs: their models (connections, jobs, schedules, the kinds the store keeps), the
config store (one TinyDB file, ``store`` over ``jsonfile``), and configs as JSON files
(``files``: export and import)."""
