"""Event-level evaluation (`safewatch eval --episodes`): hand-labelled episodes of a clip against the incidents the
real pipeline raises on it. `episodes` reads and checks the labels, `metrics` matches and scores (pure functions),
`run` replays clips (through `pipelines.worker.replay`, as `safewatch replay`) and sweeps parameters, `report`
writes the text table, the JSON and the HTML report."""
