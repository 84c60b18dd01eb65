"""Records pushed by a caller (the REST API's invoke with data, Celigo's way): one more source.

The records come in the request instead of from a server; they go through the job's mapping
into the same sinks as a run's (the entity store and the run's files, in one transaction), and
the run is recorded and claims its job like every other run, so that a push never writes while
a run of the same job does. The answer says, per record, the row it became or why it did not.
"""

from __future__ import annotations

from pathlib import Path

from studio.children import child_outputs, job_mapper
from studio.config.jobs import ApiJob, FileJob
from studio.config.store import ConfigStore
from studio.entities import entity_scope
from studio.runhistory import now_iso
from studio.sinks import RunOutputs
from studio.stores import open_history


def push_records(store: ConfigStore, job: ApiJob | FileJob, records: list) -> list[dict]:
    """Map and write ``records``; one result per record: ``{"statusCode": 200, "_json": row}``,
    ``{"statusCode": 200, "discarded": true}`` (a ``discard_if_empty`` field was empty) or
    ``{"statusCode": 422, "errors": [{"field", "message"}]}``. Raises ``AlreadyRunning``
    while a run of the job goes on."""
    entities = store.entities()
    spec = entities[job.entity]
    with entity_scope(entities):  # the children's entities, as this home defines them
        mapper = job_mapper(job, spec)
    history = open_history(store.home)
    run = history.start_run(job.id, job.name, "api")
    outputs = RunOutputs(
        store.home,
        Path(run.folder),
        spec,
        run.id,
        [f.generate for f in job.mapping],
        immutable=mapper.immutable_fields,
        children=child_outputs(mapper),
    )
    results = []
    try:
        for index, record in enumerate(records):
            mapped = mapper.map([record], start=index)
            outputs.write(mapped.rows, mapped.rejects, len(mapped.discarded), mapped.children)
            if mapped.rows:
                results.append({"statusCode": 200, "_json": mapped.rows[0]})
            elif mapped.discarded:  # dropped on purpose: no row, and nothing to mend
                results.append({"statusCode": 200, "discarded": True})
            else:
                errors = [{"field": r.field, "message": r.reason} for r in mapped.rejects]
                results.append({"statusCode": 422, "errors": errors})
        outputs.commit()
    except Exception as e:
        outputs.rollback()
        run.outputs = outputs.close()
        run.status, run.error, run.finished_at = "failed", str(e), now_iso()
        history.save(run)
        raise
    run.records, run.rows_written, run.rows_rejected = len(records), outputs.rows, outputs.rejects
    run.discarded, run.child_rows = outputs.discarded, outputs.child_rows
    run.outputs = outputs.close()
    run.status = "partial" if outputs.rejects else "success"
    run.finished_at = now_iso()
    history.save(run)
    return results
