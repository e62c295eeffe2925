"""Child scripts the bench runs with the measured tree's code (`python -P <script>`, that tree
as working directory and `PYTHONPATH`). They use only APIs every measured tree has: the
engagement domain (`decide`, `evolve`, its commands and events), `shared.model.envelope.seal`,
`shared.storage.db.migrate`, `shared.reads.audit.replay` and the outbox relay. Each prints one line,
`BENCH-RESULT <json>`.
"""
