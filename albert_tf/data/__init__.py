"""Data pipelines: pretraining instances, fine-tuning features and their TFRecord readers."""
