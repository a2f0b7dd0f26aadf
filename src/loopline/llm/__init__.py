"""Large language models: training infrastructure (data, model, distributed training,
checkpoints) and the planner. PyTorch is imported only by the modules that train
(extra ``llm``); shapes and plans are plain Python."""
