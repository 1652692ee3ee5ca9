"""The Training tab: set-up, run monitor and run history over the app state.

One run's path, from the button to the checkpoint and the curve::

    SetupPanel "Start Training" -> TrainingTab.start -> TrainingJob.new (core, checked)
      -> AppState.new_run_folder / run_started -> JobRunner worker: run_training
      -> core train() -> callbacks: MetricsLog (metrics.jsonl), CheckpointKeeper
         (image-classification-NNNN.params), EventForwarder (typed events)
      -> JobHandle.event (GUI thread) -> RunMonitor.show_event -> TrainingPlots.setData
      -> TrainingResult -> AppState.run_ended -> Part.RUN -> the tab, the window's banner

``tab`` wires; ``setup_panel`` collects the next run's settings; ``run_monitor`` shows the
run in focus (live, or read from its folder); ``run_history`` lists the runs.
"""

from __future__ import annotations

from imgcls_desktop.gui.training.tab import TrainingTab

__all__ = ["TrainingTab"]
