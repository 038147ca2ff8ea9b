"""Tasks on the one driver: pretraining, GLUE, SQuAD, RACE."""
